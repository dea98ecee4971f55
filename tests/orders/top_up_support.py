"""Builders for top-up tests: a delivered key held in a fake (or sandbox) account, and top-ups of it."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from orders.models import AITokenOrder, OrderStatus
from storefront.encryption import encrypt
from tests.factories import OrderFactory
from tests.orders.fulfilment_fakes import FakeOpenRouter, paid_order


def delivered_key_order(fake: FakeOpenRouter, **kwargs) -> AITokenOrder:
    """A delivered order whose key exists in `fake` with the order's base cost as its limit."""
    order = OrderFactory(status=OrderStatus.DELIVERED, **kwargs)
    created = fake.create_key(name=f"Token Store {order.order_id}", limit=order.base_usd_cost)
    AITokenOrder.objects.filter(pk=order.pk).update(
        key_hash=created.info.hash,
        key_encrypted=encrypt(created.key),
        paid_at=timezone.now(),
        delivered_at=timezone.now(),
    )
    fake.calls.clear()
    order.refresh_from_db()
    return order


def paid_top_up(key_order: AITokenOrder, **kwargs) -> AITokenOrder:
    """A verified, paid top-up of `key_order`'s key (same customer)."""
    kwargs.setdefault("user", key_order.user)
    return paid_order(top_up_of=key_order, **kwargs)


def limit_of(fake: FakeOpenRouter, key_order: AITokenOrder) -> Decimal:
    return fake.keys[key_order.key_hash]["limit"]


def delivered_sum(key_order: AITokenOrder) -> Decimal:
    """The key's own base cost plus every delivered top-up's: what its limit must be."""
    delivered = AITokenOrder.objects.filter(top_up_of=key_order, status=OrderStatus.DELIVERED)
    return key_order.base_usd_cost + sum((o.base_usd_cost for o in delivered), Decimal(0))
