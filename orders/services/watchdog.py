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

    def alert(self, kind: str, *, subject: str, body: str, urgent: bool = False) -> None:
        """Raise alert `kind` (the throttle in `alert_staff` decides whether it is mailed) and note it."""
        self.alerts.append(kind)
        alert_staff(kind=kind, subject=subject, body=body, urgent=urgent)


@dataclass(frozen=True)
class Heartbeat:
    """A beat job whose last success the watchdog checks; `report_field` receives its age."""

    report_field: str
    key: str
    max_age_setting: str
    kind: str
    what: str
    subject: str
    consequence: str
    urgent: bool


HEARTBEATS = (
    Heartbeat(
        "poll_age_seconds", LAST_POLL_OK_KEY, "HEALTH_POLL_MAX_AGE_SECONDS", AlertKind.POLLER_FAILING,
        what="payment poll", subject="Payment poller is not succeeding", urgent=True,
        consequence="Payments still arrive by callback, but lost callbacks and expiries are not being handled.",
    ),
    Heartbeat(
        "sync_age_seconds", LAST_SYNC_OK_KEY, "HEALTH_SYNC_MAX_AGE_SECONDS", AlertKind.SYNC_FAILING,
        what="catalogue sync", subject="OpenRouter catalogue sync is not succeeding", urgent=False,
        consequence="Prices shown to customers may be out of date.",
    ),
)


def alerts_watchdog() -> WatchdogReport:
    """Check what no single request notices and alert staff about it (beat, every minute).

    Also refreshes the cached capacity snapshot the metrics page shows (pages never call
    OpenRouter while rendering; this task does it for them).
    """
    report = WatchdogReport()
    snapshot = capacity_refresh()
    if not snapshot.known:
        report.alert(
            AlertKind.CAPACITY_UNKNOWN,
            subject="OpenRouter balance unknown",
            body="The store could not read the OpenRouter balance, so checkout capacity is unknown "
            "and checkout refuses new orders.\nCheck the OpenRouter management key and OpenRouter's status.",
            urgent=True,
        )
    else:
        report.capacity_headroom = snapshot.headroom
        if snapshot.low:
            report.alert(
                AlertKind.CAPACITY_LOW,
                subject=f"OpenRouter headroom low: ${snapshot.headroom}",
                body=(
                    f"OpenRouter balance ${snapshot.balance}, promised to customers ${snapshot.promised}, "
                    f"headroom ${snapshot.headroom} (warning below ${settings.CAPACITY_WARNING_USD}).\n"
                    "Checkout refuses orders the headroom cannot cover. Top up the OpenRouter account.\n"
                    f"Dashboard: {_admin_url('/staff/metrics/')}"
                ),
                urgent=snapshot.headroom <= 0,
            )

    for beat in HEARTBEATS:
        setattr(report, beat.report_field, _check_heartbeat(report, beat))

    report.signature_failures = _signature_failures()
    if report.signature_failures >= settings.CALLBACK_SIGNATURE_ALERT_THRESHOLD:
        report.alert(
            AlertKind.CALLBACK_SIGNATURES,
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


def _check_heartbeat(report: WatchdogReport, beat: Heartbeat) -> float | None:
    """Alert when a beat job's last success is missing or older than its limit; return its age."""
    age = heartbeat_age(beat.key)
    max_age = getattr(settings, beat.max_age_setting)
    if age is None or age > max_age:
        body = _stale_text(beat.what, age, max_age) + beat.consequence
        report.alert(beat.kind, subject=beat.subject, body=body, urgent=beat.urgent)
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
        report.alert(
            "refunds_in_doubt",
            subject=f"{len(stuck)} refund(s) in doubt",
            body="These refunds were started but their outcome is not known; the store never resends them. "
            "Select them in the admin and run “Re-check refund with the gateway”: " + ", ".join(stuck[:50]),
            urgent=True,
        )


def _signature_failures() -> int:
    return callback_signature_failures()


__all__ = ["WatchdogReport", "alerts_watchdog"]
