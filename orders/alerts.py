"""Staff alerts: an email to ADMINS when something needs a person, one per kind per window.

Anyone may call `alert_staff`. A storm (a thousand failed orders, a probing bot hammering the
callback) sends ONE email per kind per `ALERT_THROTTLE_SECONDS`; the next email after the
window says how many were held back. Subject and body are scrubbed of secrets before sending.

`alerts_watchdog()` (beat, every minute) raises the alerts nobody else can: OpenRouter capacity
low, the payment poller or the catalogue sync not succeeding for too long (their heartbeats in
`storefront.health`), and callback signature failures above a threshold.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.core.mail import mail_admins

from storefront.redaction import redact

logger = logging.getLogger("orders.alerts")


class AlertKind:
    """Kinds raised here. Other modules pass their own (e.g. `fulfilment_failed_<reason>`)."""

    CAPACITY_LOW = "capacity_low"
    CAPACITY_UNKNOWN = "capacity_unknown"
    POLLER_FAILING = "payment_poller_failing"
    SYNC_FAILING = "catalogue_sync_failing"
    CALLBACK_SIGNATURES = "callback_signature_failures"


_KEY_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _throttle_key(kind: str) -> str:
    return "alerts:gate:" + _KEY_SAFE.sub("_", kind)[:100]


def _suppressed_key(kind: str) -> str:
    return "alerts:suppressed:" + _KEY_SAFE.sub("_", kind)[:100]


def alert_staff(*, kind: str, subject: str, body: str, urgent: bool = False) -> bool:
    """Email the staff (ADMINS) unless an alert of the same `kind` went out within the window.

    `kind` groups alerts for throttling: use one kind per cause, not per order. Returns True when
    an email was sent, False when it was held back (counted, and mentioned in the next one).
    Never put a secret in `subject` or `body` — they are scrubbed anyway.
    """
    window = int(settings.ALERT_THROTTLE_SECONDS)
    subject, body = redact(subject), redact(body)
    try:
        # cache.add is atomic on Redis: of many concurrent callers exactly one opens the window.
        if window > 0 and not cache.add(_throttle_key(kind), int(time.time()), timeout=window):
            _increment(_suppressed_key(kind), timeout=window * 10)
            logger.info("staff_alert_suppressed kind=%s subject=%s", kind, subject)
            return False
        held_back = int(cache.get(_suppressed_key(kind)) or 0)
        if held_back:
            cache.delete(_suppressed_key(kind))
            body += f"\n\n({held_back} more alert(s) of this kind were held back in the previous {window} s.)"
    except Exception as exc:  # an alert must never fail the caller's committed work
        # Without the cache there is no throttle: better one email too many than a lost alert.
        logger.warning("staff_alert_unthrottled kind=%s cache_error=%s", kind, type(exc).__name__)
    prefix = "URGENT: " if urgent else ""
    logger.warning("staff_alert kind=%s urgent=%s subject=%s", kind, urgent, subject)
    mail_admins(prefix + subject, body, fail_silently=True)
    return True


def _increment(key: str, *, timeout: int) -> int:
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=timeout)
        return 1


def _admin_url(path: str) -> str:
    return settings.SITE_URL + path


# --- The watchdog ---------------------------------------------------------------------------------


@dataclass
class WatchdogReport:
    """What one watchdog run found; `alerts` lists the kinds it raised (sent or held back)."""

    capacity_headroom: Decimal | None = None
    poll_age_seconds: float | None = None
    sync_age_seconds: float | None = None
    signature_failures: int = 0
    alerts: list[str] = field(default_factory=list)


def alerts_watchdog() -> WatchdogReport:
    """Check what no single request notices and alert staff about it (beat, every minute).

    Also refreshes the cached capacity snapshot the metrics page shows (pages never call
    OpenRouter while rendering; this task does it for them).
    """
    from orders.metrics import capacity_refresh
    from storefront.health import LAST_POLL_OK_KEY, LAST_SYNC_OK_KEY, heartbeat_age

    report = WatchdogReport()
    snapshot = capacity_refresh()
    if not snapshot.known:
        report.alerts.append(AlertKind.CAPACITY_UNKNOWN)
        alert_staff(
            kind=AlertKind.CAPACITY_UNKNOWN,
            subject="OpenRouter balance unknown",
            body="The store could not read the OpenRouter balance, so checkout capacity is unknown "
            "and checkout refuses new orders.\nCheck the OpenRouter management key and OpenRouter's status.",
            urgent=True,
        )
    else:
        report.capacity_headroom = snapshot.headroom
        if snapshot.low:
            report.alerts.append(AlertKind.CAPACITY_LOW)
            alert_staff(
                kind=AlertKind.CAPACITY_LOW,
                subject=f"OpenRouter headroom low: ${snapshot.headroom}",
                body=(
                    f"OpenRouter balance ${snapshot.balance}, promised to customers ${snapshot.promised}, "
                    f"headroom ${snapshot.headroom} (warning below ${settings.CAPACITY_WARNING_USD}).\n"
                    "Checkout refuses orders the headroom cannot cover. Top up the OpenRouter account.\n"
                    f"Dashboard: {_admin_url('/staff/metrics/')}"
                ),
                urgent=snapshot.headroom <= 0,
            )

    report.poll_age_seconds = heartbeat_age(LAST_POLL_OK_KEY)
    if report.poll_age_seconds is None or report.poll_age_seconds > settings.HEALTH_POLL_MAX_AGE_SECONDS:
        report.alerts.append(AlertKind.POLLER_FAILING)
        alert_staff(
            kind=AlertKind.POLLER_FAILING,
            subject="Payment poller is not succeeding",
            body=_stale_text("payment poll", report.poll_age_seconds, settings.HEALTH_POLL_MAX_AGE_SECONDS)
            + "Payments still arrive by callback, but lost callbacks and expiries are not being handled.",
            urgent=True,
        )

    report.sync_age_seconds = heartbeat_age(LAST_SYNC_OK_KEY)
    if report.sync_age_seconds is None or report.sync_age_seconds > settings.HEALTH_SYNC_MAX_AGE_SECONDS:
        report.alerts.append(AlertKind.SYNC_FAILING)
        alert_staff(
            kind=AlertKind.SYNC_FAILING,
            subject="OpenRouter catalogue sync is not succeeding",
            body=_stale_text("catalogue sync", report.sync_age_seconds, settings.HEALTH_SYNC_MAX_AGE_SECONDS)
            + "Prices shown to customers may be out of date.",
        )

    report.signature_failures = _signature_failures()
    if report.signature_failures >= settings.CALLBACK_SIGNATURE_ALERT_THRESHOLD:
        report.alerts.append(AlertKind.CALLBACK_SIGNATURES)
        alert_staff(
            kind=AlertKind.CALLBACK_SIGNATURES,
            subject=f"{report.signature_failures} payment callbacks with a bad signature",
            body=(
                f"{report.signature_failures} gateway callbacks were rejected for a missing or wrong signature "
                f"in the last hour (threshold {settings.CALLBACK_SIGNATURE_ALERT_THRESHOLD}).\n"
                "Someone may be probing the callback URL, or the encryption keys changed. Nothing was paid "
                "because of them: rejected callbacks change no order."
            ),
        )
    _alert_refunds_in_doubt(report)
    logger.info(
        "staff_watchdog headroom=%s poll_age=%s sync_age=%s signature_failures=%s alerts=%s",
        report.capacity_headroom, _seconds(report.poll_age_seconds), _seconds(report.sync_age_seconds),
        report.signature_failures, ",".join(report.alerts) or "-",
    )
    return report


def _alert_refunds_in_doubt(report: WatchdogReport) -> None:
    """A refund left sending (process killed mid-call) or unknown is money in doubt: keep asking."""
    from orders.services.refunds import refunds_stuck

    stuck = refunds_stuck()
    if stuck:
        report.alerts.append("refunds_in_doubt")
        alert_staff(
            kind="refunds_in_doubt",
            subject=f"{len(stuck)} refund(s) in doubt",
            body="These refunds were started but their outcome is not known; the store never resends them. "
            "Select them in the admin and run “Re-check refund with the gateway”: " + ", ".join(stuck[:50]),
            urgent=True,
        )


def _seconds(age: float | None) -> str:
    return "never" if age is None else str(int(age))


def _stale_text(what: str, age: float | None, limit: int) -> str:
    if age is None:
        return f"No successful {what} has been recorded (limit {limit} s).\n"
    return f"The last successful {what} was {int(age)} s ago (limit {limit} s).\n"


def _signature_failures() -> int:
    from orders.services.payment_updates import callback_signature_failures

    return callback_signature_failures()


__all__ = ["AlertKind", "WatchdogReport", "alert_staff", "alerts_watchdog"]
