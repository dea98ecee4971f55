"""Catalogue data kept in process memory, valid for one catalogue version.

A request checks the version with one cache round trip (the version token and the crypto rates
entry, fetched together) — at most every `CATALOGUE_RECHECK_SECONDS` per process, and at once
after this process changed the catalogue — and reuses this process's copy of the data — models, packages,
rates, rules — while the version is unchanged. A new version (catalogue sync, staff edit, rates
refreshed or expired: see `storefront.catalogue_version`) makes the next request load it again
(a fixed number of queries), and drops everything remembered for the old version (`memo`:
rendered pages, quote answers), so nothing computed from old prices outlives them.

What is loaded is the caller's business (a `load` function); this module only decides when.
When the cache is down the version cannot be read: every request then loads fresh data and
nothing is remembered (slow, never stale).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver

from payments.rates import RATES_CACHE_KEY, rates_from_entry
from storefront.catalogue_version import CATALOGUE_VERSION_KEY, catalogue_version_from, local_epoch

logger = logging.getLogger("orders.catalogue_snapshot")

T = TypeVar("T")
MEMO_MAX_ENTRIES = 2048
"""Bounds what one version remembers (quote answers are keyed by what a visitor typed)."""


@dataclass
class Snapshot(Generic[T]):
    """One version's data. `version` None means "not cacheable" (the cache is down)."""

    version: str | None
    data: T
    memo: dict[Hashable, Any] = field(default_factory=dict)
    checked_at: float = 0.0  # time.monotonic() of the last version check that found it current
    epoch: int = -1  # this process's bump count when last checked (storefront.catalogue_version)

    def remember(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """`compute()` once per version and key (always, when not cacheable)."""
        if self.version is None:
            return compute()
        try:
            return self.memo[key]
        except KeyError:
            pass
        value = compute()
        if len(self.memo) >= MEMO_MAX_ENTRIES:
            self.memo.clear()  # crude but bounded: hostile keys cannot grow memory
        self.memo[key] = value
        return value


_ALL: weakref.WeakSet[VersionedSnapshot] = weakref.WeakSet()


class VersionedSnapshot(Generic[T]):
    """A process-wide copy of `load(rates)`'s result, reloaded when the catalogue version changes."""

    def __init__(self, load: Callable[[Mapping[str, Decimal]], T]) -> None:
        self._load = load
        self._current: Snapshot[T] | None = None
        self._lock = threading.Lock()
        _ALL.add(self)

    def current(self) -> Snapshot[T]:
        current = self._current
        now = time.monotonic()
        if (
            current is not None
            and current.epoch == local_epoch()
            and now - current.checked_at < settings.CATALOGUE_RECHECK_SECONDS
        ):
            return current  # checked a moment ago, and nothing changed in this process since
        epoch = local_epoch()
        try:
            values = cache.get_many([CATALOGUE_VERSION_KEY, RATES_CACHE_KEY])
            token = catalogue_version_from(values.get(CATALOGUE_VERSION_KEY))
        except Exception:  # the page must render with the cache down, from the database
            logger.warning("catalogue version unavailable (cache down): serving uncached")
            return Snapshot(version=None, data=self._load({}))
        rates_entry = values.get(RATES_CACHE_KEY)
        if isinstance(rates_entry, dict):  # a refresh stamps a new fetched_at; the rates text guards the rest
            version = f"{token}:{rates_entry.get('fetched_at')}:{rates_entry.get('rates')}"
        else:
            version = f"{token}:no rates"
        if current is not None and current.version == version:
            current.checked_at, current.epoch = now, epoch
            return current
        with self._lock:  # one thread loads; the others wait for it instead of loading too
            current = self._current
            if current is None or current.version != version:
                # The version was read before loading: if it moves on meanwhile, the next check reloads.
                current = Snapshot(version=version, data=self._load(rates_from_entry(rates_entry)))
                self._current = current
            current.checked_at, current.epoch = now, epoch
        return current

    def reset(self) -> None:
        """Forget this process's copy (tests changing settings; the next request reloads)."""
        self._current = None


@receiver(setting_changed)
def _reset_on_setting_changed(**kwargs) -> None:
    # Rules and accepted currencies are read from settings when loading; tests override them.
    for snapshot in list(_ALL):
        snapshot.reset()
