"""Capacity guard. (Placeholder interface; the fulfilment work implements it.)"""

from __future__ import annotations

from decimal import Decimal


class CapacityUnavailable(Exception):
    """OpenRouter's balance cannot cover a new order right now."""


def ensure_capacity(*, base_usd_cost: Decimal) -> None:
    """Raise CapacityUnavailable when balance − promised < base_usd_cost."""
    return None
