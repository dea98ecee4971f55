"""Capacity guard: never sell tokens the OpenRouter account cannot pay for.

The store does not buy OpenRouter credits itself (staff top the account up by hand), so every
order it accepts is a promise against the current balance. What is already promised:
- the unused limit of every delivered key that is still live (refreshed from `GET /keys` by
  beat; the full base cost when not yet known), and
- the base cost of every order not yet delivered (pending, paid, fulfilling).
Checkout refuses a new order when balance − promised cannot cover its base cost. When the
balance cannot be read at all, the answer is "unavailable": selling blind is how an account
ends up owing keys it cannot create.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db.models import DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce

from openrouter import credits
from orders.alerts import alert_staff
from orders.models import OPEN_LIABILITY_STATUSES, AITokenOrder, OrderStatus

logger = logging.getLogger("orders.capacity")

ZERO = Decimal("0")
_MONEY = DecimalField(max_digits=14, decimal_places=6)


class CapacityUnavailable(Exception):
    """OpenRouter's balance cannot cover a new order right now (or cannot be read)."""


class Promised(NamedTuple):
    """What the account already owes, in USD (`promised_usd`)."""

    delivered_unused: Decimal
    open_orders: Decimal

    @property
    def total(self) -> Decimal:
        return self.delivered_unused + self.open_orders


@dataclass(frozen=True)
class CapacitySnapshot:
    """What the staff dashboard shows. `balance`/`headroom` are None when the balance is unknown."""

    balance: Decimal | None
    promised: Decimal
    headroom: Decimal | None
    delivered_unused: Decimal = ZERO
    open_orders: Decimal = ZERO
    error: str = ""

    @property
    def known(self) -> bool:
        return self.balance is not None

    @property
    def low(self) -> bool:
        """Headroom below CAPACITY_WARNING_USD (False when unknown: check `known`)."""
        return self.headroom is not None and self.headroom < Decimal(settings.CAPACITY_WARNING_USD)


def promised_usd() -> Promised:
    """Everything the account already owes, in one aggregate query."""
    # A delivered top-up holds no key: its tokens are in its key's order's (raised) limit.
    live_key = Q(status=OrderStatus.DELIVERED, key_disabled=False, top_up_of__isnull=True)
    totals = AITokenOrder.objects.aggregate(
        delivered_unused=Coalesce(
            Sum(
                Coalesce("key_limit_remaining_usd", "key_limit_usd", "base_usd_cost", output_field=_MONEY),
                filter=live_key,
            ),
            Value(ZERO),
            output_field=_MONEY,
        ),
        open_orders=Coalesce(
            Sum("base_usd_cost", filter=Q(status__in=OPEN_LIABILITY_STATUSES), output_field=_MONEY),
            Value(ZERO),
            output_field=_MONEY,
        ),
    )
    return Promised(
        delivered_unused=max(Decimal(totals["delivered_unused"]), ZERO),
        open_orders=Decimal(totals["open_orders"]),
    )


def _read_balance() -> Decimal:
    return credits.cached_balance()


def capacity_balance_prefetch() -> None:
    """Warm the cached balance so the check under the capacity lock reads it from the cache.

    Errors are left for `ensure_capacity` to report (it fails safe).
    """
    with contextlib.suppress(Exception):  # ensure_capacity reads again and refuses
        _read_balance()


def ensure_capacity(*, base_usd_cost: Decimal) -> None:
    """Raise CapacityUnavailable when balance − promised < base_usd_cost (alerting staff).

    Called by checkout under the capacity lock, just before the order is created in the same
    transaction (so the new order is not yet in `promised`, and every earlier one is).
    """
    try:
        balance = _read_balance()
    except Exception as exc:  # fail safe: an unreadable balance never lets an order through
        logger.warning("capacity balance unreadable (%s)", type(exc).__name__)
        alert_staff(
            kind="capacity_unknown",
            subject="Checkout paused: OpenRouter balance cannot be read",
            body=(
                "Checkout refuses new orders because GET /credits failed "
                f"({type(exc).__name__}). Check OPENROUTER_API_KEY and OpenRouter's status."
            ),
            urgent=True,
        )
        raise CapacityUnavailable("OpenRouter balance unavailable") from None
    promised = promised_usd()
    headroom = balance - promised.total
    if headroom < base_usd_cost:
        logger.warning("capacity refused base=%s headroom=%s", base_usd_cost, headroom)
        alert_staff(
            kind="capacity_exhausted",
            subject="Checkout paused: OpenRouter balance too low",
            body=(
                f"A ${base_usd_cost} order was refused. Balance ${balance}, promised ${promised.total} "
                f"(unused limits of live keys ${promised.delivered_unused}, open orders "
                f"${promised.open_orders}), headroom ${headroom}. Top the OpenRouter account up."
            ),
            urgent=True,
        )
        raise CapacityUnavailable("not enough OpenRouter balance for this order")


def capacity_snapshot() -> CapacitySnapshot:
    """Balance, liability and headroom for staff.

    The balance comes from `cached_balance()` (≤ 60 s old; a `GET /credits` when the cache is
    cold), so pages show a snapshot a beat task took, not this. Unreadable balance → None fields.
    """
    promised = promised_usd()
    try:
        balance = _read_balance()
    except Exception as exc:
        return CapacitySnapshot(
            balance=None,
            promised=promised.total,
            headroom=None,
            delivered_unused=promised.delivered_unused,
            open_orders=promised.open_orders,
            error=f"balance unavailable ({type(exc).__name__})",
        )
    return CapacitySnapshot(
        balance=balance,
        promised=promised.total,
        headroom=balance - promised.total,
        delivered_unused=promised.delivered_unused,
        open_orders=promised.open_orders,
    )


__all__ = [
    "CapacitySnapshot",
    "CapacityUnavailable",
    "Promised",
    "capacity_balance_prefetch",
    "capacity_snapshot",
    "ensure_capacity",
    "promised_usd",
]
