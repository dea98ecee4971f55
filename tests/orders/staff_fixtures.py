"""Orders in any state for the staff-operations tests (admin, actions, metrics)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

from accounts.models import User
from orders.models import AITokenOrder, OrderStatus
from tests.factories import OrderFactory

S = OrderStatus
MONEY = {
    "A": (Decimal("1.80"), Decimal("0.36"), Decimal("2.16")),
    "B": (Decimal("10.00"), Decimal("2.00"), Decimal("12.00")),
    "C": (Decimal("5.00"), Decimal("1.00"), Decimal("6.00")),
}
_key_numbers = itertools.count(1)
_user_numbers = itertools.count(1)
PAID_STATUSES = {S.PAID, S.FULFILLING, S.DELIVERED, S.FAILED, S.NEEDS_REVIEW, S.REFUNDED}


def make_order(
    *,
    status: str = S.PENDING,
    created_at: datetime | None = None,
    money: str = "A",
    delivery_seconds: int | None = None,
    **fields,
) -> AITokenOrder:
    """An order in `status`, created at `created_at` (auto_now_add is overridden after insert)."""
    base, markup, total = MONEY[money]
    if "user" not in fields:
        # No password hashing: hundreds of orders must stay cheap to build.
        fields["user"] = User.objects.create(email=f"buyer{next(_user_numbers)}@example.com", password="!")
    if status in PAID_STATUSES:
        fields.setdefault("paid_at", (created_at or datetime.now().astimezone()) + timedelta(minutes=5))
    if status == S.DELIVERED:
        fields.setdefault("key_hash", f"{next(_key_numbers):064x}")
        fields.setdefault("delivered_at", fields["paid_at"] + timedelta(seconds=delivery_seconds or 30))
    order = OrderFactory(status=status, base_usd_cost=base, markup_amount=markup, total_usd_cost=total, **fields)
    if created_at is not None:
        AITokenOrder.objects.filter(pk=order.pk).update(created_at=created_at)
        order.created_at = created_at
    return order
