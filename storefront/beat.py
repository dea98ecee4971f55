"""Beat's own heartbeat, so `/healthz` knows beat is alive within seconds of it starting.

django-celery-beat writes `last_run_at` to the database only every few minutes (its sync
interval), so a fresh start looked dead for about three minutes. This scheduler stamps a cache
key on every tick of beat's loop (at most every few seconds), which the health check reads.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger("storefront.beat")

BEAT_HEARTBEAT_KEY = "health:beat_alive"
STAMP_EVERY_SECONDS = 5.0


def record_beat_alive(*, at: float | None = None) -> None:
    cache.set(BEAT_HEARTBEAT_KEY, at if at is not None else time.time(), timeout=None)


class HeartbeatScheduler(DatabaseScheduler):
    """The database scheduler, plus a heartbeat stamped from beat's loop."""

    _last_stamp = 0.0

    def tick(self, *args, **kwargs):
        now = time.monotonic()
        if now - self._last_stamp >= STAMP_EVERY_SECONDS:
            try:
                record_beat_alive()
                self._last_stamp = now
            except Exception as exc:  # the cache being down must not stop the schedule
                logger.warning("beat heartbeat not recorded (%s)", type(exc).__name__)
        return super().tick(*args, **kwargs)
