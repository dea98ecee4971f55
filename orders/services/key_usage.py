"""How much of a delivered key has been spent.

OpenRouter is the source of truth; the store keeps a copy on the order (usage, limit remaining,
checked at) so pages render from the database. Beat refreshes every key from one `GET /keys`
listing; an order page that shows stale numbers asks for a refresh of its own key, at most once
a minute per order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.core.cache import cache
from django.utils import timezone

from openrouter.client import OpenRouterError, OpenRouterNotFound, get_openrouter_client
from orders.models import AITokenOrder, OrderStatus
from orders.transition_effects import KEY_USAGE_REFRESH_TASK, task_enqueue

logger = logging.getLogger("orders.key_usage")

STALE_AFTER = timedelta(seconds=60)
_FIELDS = ["key_usage_usd", "key_limit_remaining_usd", "key_usage_checked_at", "key_disabled"]


@dataclass(frozen=True)
class KeyUsage:
    """A delivered key's spending as last seen (all USD Decimals; None = not known yet)."""

    limit: Decimal
    used: Decimal | None
    remaining: Decimal | None
    tokens_left: int | None
    percent_used: int | None
    checked_at: datetime | None
    disabled: bool
    stale: bool


@dataclass
class UsageRefreshReport:
    updated: int = 0
    missing: list[str] = field(default_factory=list)
    error: str = ""


def key_usage_of(order: AITokenOrder, *, now: datetime | None = None) -> KeyUsage:
    """The stored numbers, shaped for display. No query, no HTTP."""
    now = now or timezone.now()
    limit = order.confirmed_key_limit  # the base cost plus every delivered top-up
    used = order.key_usage_usd
    remaining = order.key_limit_remaining_usd
    if remaining is None and used is not None:
        remaining = max(limit - used, Decimal(0))
    tokens_left = None
    if remaining is not None and order.price_per_token and order.price_per_token > 0:
        tokens_left = int((remaining / order.price_per_token).to_integral_value(rounding=ROUND_DOWN))
    percent = None
    if used is not None and limit > 0:
        percent = int(min(Decimal(100), used * 100 / limit).to_integral_value(rounding=ROUND_DOWN))
    checked = order.key_usage_checked_at
    return KeyUsage(
        limit=limit, used=used, remaining=remaining, tokens_left=tokens_left, percent_used=percent,
        checked_at=checked, stale=checked is None or now - checked > STALE_AFTER, disabled=order.key_disabled,
    )


def key_usage_show(*, order: AITokenOrder) -> KeyUsage:
    """The usage fragment's numbers; when stale, ask a worker to refresh them (once a minute per order).

    Never calls OpenRouter itself: the page renders from the database and the next poll shows
    the refreshed numbers.
    """
    usage = key_usage_of(order)
    if usage.stale and cache.add(f"usage-refresh:{order.pk}", 1, 60):
        try:
            task_enqueue(KEY_USAGE_REFRESH_TASK, order_pk=order.pk)
        except Exception as exc:  # a broker hiccup must not break the page
            cache.delete(f"usage-refresh:{order.pk}")
            logger.warning("order=%s usage refresh not enqueued (%s)", order.order_id, type(exc).__name__)
    return usage


def key_usage_refresh(*, order_pk: int | None = None) -> UsageRefreshReport:
    """Copy usage and remaining limit from OpenRouter onto delivered orders.

    With `order_pk`: one `GET /keys/{hash}` for that order. Without: one `GET /keys` listing for
    every delivered key (never a call per order).
    """
    if order_pk is not None:
        return _refresh_one(order_pk)
    report = UsageRefreshReport()
    try:
        keys = {info.hash: info for info in get_openrouter_client().list_keys()}
    except OpenRouterError as exc:
        report.error = type(exc).__name__
        logger.warning("key usage refresh failed (%s)", report.error)
        return report
    now = timezone.now()
    orders = list(
        AITokenOrder.objects.filter(status=OrderStatus.DELIVERED, key_hash__isnull=False).only(
            "pk", "order_id", "key_hash", *_FIELDS
        )
    )
    changed = []
    for order in orders:
        info = keys.get(order.key_hash)
        if info is None:
            report.missing.append(order.order_id)
            continue
        order.key_usage_usd = info.usage
        order.key_limit_remaining_usd = info.limit_remaining
        order.key_usage_checked_at = now
        order.key_disabled = order.key_disabled or info.disabled
        changed.append(order)
    AITokenOrder.objects.bulk_update(changed, _FIELDS, batch_size=500)
    report.updated = len(changed)
    if report.missing:
        logger.warning("key usage refresh: %d delivered keys missing at OpenRouter", len(report.missing))
    return report


def _refresh_one(order_pk: int) -> UsageRefreshReport:
    report = UsageRefreshReport()
    order = (
        AITokenOrder.objects.filter(pk=order_pk, status=OrderStatus.DELIVERED, key_hash__isnull=False)
        .only("pk", "order_id", "key_hash", "key_disabled")
        .first()
    )
    if order is None:
        return report
    try:
        info = get_openrouter_client().get_key(order.key_hash)
    except OpenRouterNotFound:
        report.missing.append(order.order_id)
        return report
    except OpenRouterError as exc:
        report.error = type(exc).__name__
        return report
    report.updated = AITokenOrder.objects.filter(pk=order.pk).update(
        key_usage_usd=info.usage,
        key_limit_remaining_usd=info.limit_remaining,
        key_usage_checked_at=timezone.now(),
        key_disabled=order.key_disabled or info.disabled,
    )
    return report


__all__ = ["KeyUsage", "UsageRefreshReport", "key_usage_of", "key_usage_refresh", "key_usage_show"]
