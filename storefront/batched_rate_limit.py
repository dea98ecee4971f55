"""A per-key rate limit counted in process memory and shared through the cache in batches.

Why not django-ratelimit for the hottest endpoints: it adds and increments a cache key on every
request — two round trips to Redis, or a locked file rewrite with the development file cache —
which cost more than the quote itself. Here each process counts hits per (key, window) in memory
and adds them to the shared counter in batches, so a burst costs one cache operation per batch.
Far from the limit a batch is up to `BATCH` hits; once a key's known total comes within a batch
of the limit, every hit is shared at once, so the decision at the limit is as exact as the
cache's. What another process has counted but not yet shared (fewer than `BATCH` hits each) is
the only slack: a generous limit meant to stop scripts, not to bill, can afford it.

Windows are fixed (`time() // period`), as django-ratelimit's are.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
import time
import weakref
from dataclasses import dataclass

from django.core.cache import cache

logger = logging.getLogger("storefront.batched_rate_limit")

BATCH = 16
MAX_KEYS = 50_000  # distinct keys one process remembers per window before it starts afresh
_RATE = re.compile(r"(\d+)/(\d*)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@functools.lru_cache(maxsize=64)
def rate_parse(rate: str) -> tuple[int, int]:
    """'300/m' → (300, 60); '10/5m' → (10, 300)."""
    match = _RATE.fullmatch(rate.strip())
    if match is None:
        raise ValueError(f"not a rate: {rate!r} (e.g. 300/m)")
    count, multiplier, unit = match.groups()
    return int(count), int(multiplier or 1) * _UNIT_SECONDS[unit]


@dataclass
class _Count:
    unsent: int = 0  # hits seen here and not yet added to the shared counter
    shared: int | None = None  # the shared counter after this process's last addition


_ALL: weakref.WeakSet[BatchedRateLimit] = weakref.WeakSet()


def batched_rate_limits_forget() -> None:
    """Forget every process-local count (tests start each case with a clear cache and clear counts)."""
    for limit in list(_ALL):
        limit.forget()


class BatchedRateLimit:
    """`hit(key, rate)` counts a request and says whether it is over the limit."""

    def __init__(self, group: str) -> None:
        _ALL.add(self)
        self.group = group
        self._window: tuple[int, int] | None = None  # (period, window number) of the counts below
        self._counts: dict[str, _Count] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        with self._lock:
            self._window, self._counts = None, {}

    def _cache_key(self, key: str, period: int, window: int) -> str:
        digest = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
        return f"rl:{self.group}:{period}:{window}:{digest}"

    def hit(self, key: str, rate: str) -> bool:
        """Count one request for `key`; True when it goes over `rate`."""
        limit, period = rate_parse(rate)
        window = int(time.time() // period)
        with self._lock:
            if self._window != (period, window) or len(self._counts) >= MAX_KEYS:
                self._window, self._counts = (period, window), {}
            count = self._counts.setdefault(key, _Count())
            count.unsent += 1
            near_limit = count.shared is None or count.shared + count.unsent + BATCH > limit
            if not (near_limit or count.unsent >= BATCH):
                return count.shared + count.unsent > limit
            sending, count.unsent = count.unsent, 0  # each hit is sent exactly once
            known = count.shared or 0
        # The round trip happens outside the lock: the other threads keep counting meanwhile.
        try:
            shared = self._share(self._cache_key(key, period, window), sending, period)
        except Exception:  # the cache is down: count here alone rather than fail the page
            logger.warning("rate limit %s: shared counter unavailable, counting per process", self.group)
            shared = known + sending
        with self._lock:
            count.shared = max(count.shared or 0, shared)  # answers may come back out of order
            return count.shared + count.unsent > limit

    @staticmethod
    def _share(cache_key: str, hits: int, period: int) -> int:
        try:
            return cache.incr(cache_key, hits)  # the usual case: the window's counter exists
        except ValueError:
            if cache.add(cache_key, hits, timeout=period + 5):
                return hits
            return cache.incr(cache_key, hits)  # another process created it meanwhile
