"""Heartbeats: the payment poller and the catalogue sync record their last success here.

A low-level module (cache only) so the adapters and orders can record a heartbeat without
reaching up to the `/healthz` view (`storefront.health`) that reads them, as the watchdog does.
"""

from __future__ import annotations

import time

from django.core.cache import cache

# Unix timestamps (float seconds) of the last successful run; stored without expiry.
LAST_POLL_OK_KEY = "health:last_poll_ok"
LAST_SYNC_OK_KEY = "health:last_sync_ok"


def record_poll_ok(*, at: float | None = None) -> None:
    """Called by the payment poller after a cycle that reached the gateway."""
    cache.set(LAST_POLL_OK_KEY, at if at is not None else time.time(), timeout=None)


def record_sync_ok(*, at: float | None = None) -> None:
    """Called by the catalogue sync after a successful `GET /models`."""
    cache.set(LAST_SYNC_OK_KEY, at if at is not None else time.time(), timeout=None)


def heartbeat_age(key: str, *, now: float | None = None) -> float | None:
    """Seconds since the heartbeat at `key`, or None if none was ever recorded (or unreadable)."""
    try:
        value = cache.get(key)
    except Exception:  # the cache check reports the outage itself
        return None
    if value is None:
        return None
    try:
        return max(0.0, (now if now is not None else time.time()) - float(value))
    except (TypeError, ValueError):
        return None


__all__ = ["LAST_POLL_OK_KEY", "LAST_SYNC_OK_KEY", "heartbeat_age", "record_poll_ok", "record_sync_ok"]
