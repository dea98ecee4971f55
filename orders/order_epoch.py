"""The orders epoch: a token in the shared cache that changes whenever any order is written.

Every open order page polls its status box (`/orders/<id>/status/`), and almost every poll's
answer is "not modified". That answer needs the order's row, and reading it was the dearest part
of a poll (a database round trip, per poll, per open page). So the rows polls read are kept in
process memory (`StatusRows`) for as long as no order has been written anywhere:

- Every write of an order — `save()`, `delete()` (orders.models), and `OrderWritesQuerySet`'s
  `update()`, `delete()`, `bulk_update()`, `bulk_create()` — calls `orders_changed()` at once and
  again when its transaction commits: this process forgets its rows, and a new token in the
  shared cache tells the others, which re-read the token at most every
  `ORDER_STATUS_RECHECK_SECONDS` (1 s). Raw SQL that writes orders must call it too.
- A row loaded while a write was committing is not kept (the generation it was loaded under has
  moved on), and no row is kept longer than `ROW_MAX_AGE_SECONDS`, whatever happens to the token
  (a lost bump, a cache flush).
- With the cache down nothing is kept: every poll reads the database.

So a poll may answer "not modified" for up to about a second after another process changed the
order; the answer that shows a change (and every rendered box) is always read from the database.
A token rather than a counter: a cache that loses the key makes readers start afresh, never
reuse an old value.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import models, transaction

logger = logging.getLogger("orders.order_epoch")

ORDERS_EPOCH_KEY = "orders:epoch:v1"
ROW_MAX_AGE_SECONDS = 10.0
MAX_ROWS = 10_000

_local_changes = 0


def orders_changed() -> None:
    """An order was written and committed: forget the rows here now, and tell other processes."""
    global _local_changes
    _local_changes += 1
    try:
        cache.set(ORDERS_EPOCH_KEY, secrets.token_hex(8), timeout=None)
    except Exception:  # the write must not fail because the cache is down; rows still age out
        logger.warning("orders epoch bump failed: cache unavailable")


def orders_changed_on_commit(using: str | None = None) -> None:
    """Call `orders_changed` now and again when the current transaction commits.

    Now, so readers in this transaction (and tests, whose transactions never commit) see the
    change at once; on commit, so that no reader can have loaded the row as it was before the
    commit and kept it under the new generation. Outside a transaction both happen at once.
    """
    orders_changed()
    transaction.on_commit(orders_changed, using=using)


class OrderWritesQuerySet(models.QuerySet):
    """Every bulk write of orders announces itself on commit: status polls answered from memory
    must learn of it (orders/order_epoch.py)."""

    def update(self, **kwargs) -> int:
        changed = super().update(**kwargs)
        if changed:
            orders_changed_on_commit(self.db)
        return changed

    def delete(self):
        deleted = super().delete()
        orders_changed_on_commit(self.db)
        return deleted

    def bulk_update(self, objs, fields, batch_size=None) -> int:
        changed = super().bulk_update(objs, fields, batch_size=batch_size)
        orders_changed_on_commit(self.db)
        return changed

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        orders_changed_on_commit(self.db)
        return created


def _shared_epoch() -> str:
    value = cache.get(ORDERS_EPOCH_KEY)
    if isinstance(value, str) and value:
        return value
    token = secrets.token_hex(8)
    if cache.add(ORDERS_EPOCH_KEY, token, timeout=None):
        return token
    stored = cache.get(ORDERS_EPOCH_KEY)
    return stored if isinstance(stored, str) and stored else token


class StatusRows:
    """Rows by order id, kept while neither this process nor the shared epoch has seen a write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, tuple[dict, float]] = {}
        self._generation: tuple[str, int] | None = None
        self._checked_at = float("-inf")

    def _current(self, now: float) -> tuple[str, int] | None:
        """The (shared token, local writes) generation; None when the cache cannot say."""
        generation = self._generation
        recheck = settings.ORDER_STATUS_RECHECK_SECONDS
        if generation is not None and generation[1] == _local_changes and now - self._checked_at < recheck:
            return generation
        local = _local_changes  # read before the token: a write after this starts a new generation
        try:
            token = _shared_epoch()
        except Exception:
            return None
        with self._lock:
            if (token, local) != self._generation:
                self._rows.clear()
                self._generation = (token, local)
            self._checked_at = now
            return self._generation

    def get(self, order_id: str) -> dict | None:
        """The kept row, if it is still of the current generation and young enough."""
        now = time.monotonic()
        generation = self._current(now)
        if generation is None:
            return None
        kept = self._rows.get(order_id)
        if kept is None or now - kept[1] > ROW_MAX_AGE_SECONDS:
            return None
        return kept[0]

    def load(self, order_id: str, load: Callable[[], dict | None]) -> dict | None:
        """`load()` from the database, kept only if no write began a new generation meanwhile."""
        now = time.monotonic()
        generation = self._current(now)
        row = load()
        if row is None or generation is None:
            return row
        with self._lock:
            if self._generation == generation and generation[1] == _local_changes:
                if len(self._rows) >= MAX_ROWS:
                    self._rows.clear()
                self._rows[order_id] = (row, now)
        return row

    def forget(self) -> None:
        with self._lock:
            self._rows.clear()
            self._generation = None
