"""Staff alerts: an email to ADMINS when something needs a person, one per kind per window.

Anyone may call `alert_staff`. A storm (a thousand failed orders, a probing bot hammering the
callback) sends ONE email per kind per `ALERT_THROTTLE_SECONDS`; the next email after the
window says how many were held back. Subject and body are scrubbed of secrets before sending.

The watchdog that raises the alerts nobody else can is `orders.services.watchdog`.
"""

from __future__ import annotations

import logging
import re
import time

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


def alert_staff_safely(*, kind: str, subject: str, body: str, urgent: bool = False) -> None:
    """`alert_staff` for callers whose work is already committed: an alert never breaks or undoes it."""
    try:
        alert_staff(kind=kind, subject=subject, body=body, urgent=urgent)
    except Exception as exc:
        logger.error("staff alert %s not sent (%s)", kind, type(exc).__name__)


def _increment(key: str, *, timeout: int) -> int:
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=timeout)
        return 1


__all__ = ["AlertKind", "alert_staff", "alert_staff_safely"]
