"""The watchdog (beat, every minute): alert staff about what no single request notices.

OpenRouter capacity low or unknown, the payment poller or the catalogue sync not succeeding for
too long (their heartbeats in `storefront.health`), and callback signature failures above a
threshold. Each alert goes through the throttled `orders.alerts.alert_staff`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from orders.alerts import AlertKind, alert_staff
from orders.services.capacity_cache import capacity_refresh
from orders.services.payment_updates import callback_signature_failures
from orders.services.refunds import refunds_stuck
from storefront.heartbeats import LAST_POLL_OK_KEY, LAST_SYNC_OK_KEY, heartbeat_age

logger = logging.getLogger("orders.alerts")


def _admin_url(path: str) -> str:
    return settings.SITE_URL + path


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

    report.poll_age_seconds = _check_heartbeat(
        report,
        key=LAST_POLL_OK_KEY,
        max_age=settings.HEALTH_POLL_MAX_AGE_SECONDS,
        kind=AlertKind.POLLER_FAILING,
        what="payment poll",
        subject="Payment poller is not succeeding",
        consequence="Payments still arrive by callback, but lost callbacks and expiries are not being handled.",
        urgent=True,
    )
    report.sync_age_seconds = _check_heartbeat(
        report,
        key=LAST_SYNC_OK_KEY,
        max_age=settings.HEALTH_SYNC_MAX_AGE_SECONDS,
        kind=AlertKind.SYNC_FAILING,
        what="catalogue sync",
        subject="OpenRouter catalogue sync is not succeeding",
        consequence="Prices shown to customers may be out of date.",
        urgent=False,
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


def _check_heartbeat(
    report: WatchdogReport,
    *,
    key: str,
    max_age: int,
    kind: str,
    what: str,
    subject: str,
    consequence: str,
    urgent: bool,
) -> float | None:
    """Alert when a beat job's last success is missing or older than `max_age`; return its age."""
    age = heartbeat_age(key)
    if age is None or age > max_age:
        report.alerts.append(kind)
        alert_staff(kind=kind, subject=subject, body=_stale_text(what, age, max_age) + consequence, urgent=urgent)
    return age


def _seconds(age: float | None) -> str:
    return "never" if age is None else str(int(age))


def _stale_text(what: str, age: float | None, limit: int) -> str:
    if age is None:
        return f"No successful {what} has been recorded (limit {limit} s).\n"
    return f"The last successful {what} was {int(age)} s ago (limit {limit} s).\n"


def _alert_refunds_in_doubt(report: WatchdogReport) -> None:
    """A refund left sending (process killed mid-call) or unknown is money in doubt: keep asking."""
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


def _signature_failures() -> int:
    return callback_signature_failures()


__all__ = ["WatchdogReport", "alerts_watchdog"]
