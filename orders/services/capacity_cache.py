"""The capacity snapshot cached for the staff dashboard (pages never call OpenRouter).

The watchdog task takes a snapshot (`capacity_refresh`, which may call OpenRouter) and caches
it; the metrics page only reads the cache (`capacity_cached`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from orders.services import capacity

logger = logging.getLogger("orders.metrics")

CAPACITY_CACHE_KEY = "staff:capacity_snapshot"
CAPACITY_CACHE_SECONDS = 15 * 60


@dataclass(frozen=True)
class CachedCapacity:
    """A capacity snapshot as cached for the dashboard; balance/headroom None = balance unknown."""

    balance: Decimal | None
    promised: Decimal
    headroom: Decimal | None
    checked_at: datetime

    @property
    def known(self) -> bool:
        return self.balance is not None and self.headroom is not None

    @property
    def low(self) -> bool:
        return self.headroom is not None and self.headroom < settings.CAPACITY_WARNING_USD


def _decimal_or_none(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def capacity_refresh() -> CachedCapacity:
    """Take a capacity snapshot now (may call OpenRouter) and cache it for the dashboard.

    Runs in the staff watchdog task, never in a request. An unreadable balance is cached too
    (as unknown) so the page says so instead of showing an old figure.
    """
    snapshot = capacity.capacity_snapshot()
    cached = CachedCapacity(
        balance=_decimal_or_none(snapshot.balance),
        promised=Decimal(str(snapshot.promised)),
        headroom=_decimal_or_none(snapshot.headroom),
        checked_at=timezone.now(),
    )
    if not cached.known:
        logger.warning("capacity snapshot: balance unknown (%s)", getattr(snapshot, "error", ""))
    cache.set(
        CAPACITY_CACHE_KEY,
        {
            "balance": None if cached.balance is None else str(cached.balance),
            "promised": str(cached.promised),
            "headroom": None if cached.headroom is None else str(cached.headroom),
            "checked_at": cached.checked_at.isoformat(),
        },
        timeout=CAPACITY_CACHE_SECONDS,
    )
    return cached


def capacity_cached() -> CachedCapacity | None:
    """The last snapshot taken by the watchdog, or None ("unknown") if there is none."""
    raw = cache.get(CAPACITY_CACHE_KEY)
    if not raw:
        return None
    try:
        return CachedCapacity(
            balance=_decimal_or_none(raw["balance"]),
            promised=Decimal(raw["promised"]),
            headroom=_decimal_or_none(raw["headroom"]),
            checked_at=datetime.fromisoformat(raw["checked_at"]),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None


__all__ = ["CAPACITY_CACHE_KEY", "CachedCapacity", "capacity_cached", "capacity_refresh"]
