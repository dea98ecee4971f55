"""Fulfilment: the one place in the store that buys anything from OpenRouter.

`order_fulfil` turns one verified, paid order into exactly one OpenRouter key whose USD limit
is the order's base cost (docs/ARCHITECTURE.md, "Money rules", rule 1). It is safe to call any
number of times, from any number of workers, in any order: the claim (`paid → fulfilling`)
is a conditional UPDATE, so only one caller proceeds; the rules are checked again right before
buying; a key left behind by a
crashed attempt is deleted before a new one is created; and the key is stored in the same
transaction that marks the order delivered.

The safety net under it is the reconciler (`orders.services.reconciler`); the cache marks that
tell it which orders have a task in flight live in `orders.services.fulfil_queue`, and the staff
action that disables a delivered key lives in `orders.services.staff_actions`.

Why this module is long: the purchase and every guard around it (claim, rule re-check, orphan
clean-up, store-or-discard, back-off, failure) read best as one story in one place.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from openrouter.client import (
    TRANSIENT_ERRORS,
    CreatedKey,
    OpenRouterAuthError,
    OpenRouterClient,
    OpenRouterError,
    OpenRouterForbidden,
    OpenRouterNotFound,
    OpenRouterPaymentRequired,
    get_openrouter_client,
)
from orders.alerts import alert_staff_safely
from orders.models import (
    HARD_CAP_USD,
    HARD_MARKUP_RATE,
    AITokenOrder,
    EventSource,
    OrderEvent,
    OrderReason,
    OrderStatus,
)
from orders.pricing import PricingRules, quote, rules_from_settings
from orders.services.fulfil_lease import (
    fulfil_lease_claim,
    fulfil_lease_end,
    fulfil_lease_remaining,
    fulfil_lease_renew,
    fulfil_lease_take_over,
)
from orders.services.fulfil_outcome import (
    FulfilOutcome,
    FulfilResult,
    fulfil_back_off,
    fulfil_fail,
    retry_delay,
)
from orders.services.key_names import key_name, order_id_from_key_name
from orders.services.key_sweep import key_sweep_schedule
from orders.services.top_up import top_up_fulfil
from orders.services.transitions import order_record_event
from storefront.encryption import encrypt

logger = logging.getLogger("orders.fulfilment")

S = OrderStatus
CENT = Decimal("0.01")
# --- The purchase ---------------------------------------------------------------------------


def order_fulfil(*, order_pk: int) -> FulfilOutcome:
    """Buy the ordered tokens as one OpenRouter key and deliver it — once, whoever calls.

    Only orders in `paid` are considered, or in `fulfilling` under a lapsed lease (a killed
    worker's claim, taken over: orders/services/fulfil_lease.py); anything else returns `SKIPPED`
    (or `LEASED` while another attempt's lease is live) without touching OpenRouter. Every attempt
    after the first is followed by a targeted sweep of the order's keys (key_sweep.py): the
    attempt before it may have left a key whose creation was still in flight.
    """
    outcome = _order_fulfil(order_pk=order_pk)
    if outcome.attempt > 1 and outcome.result not in (FulfilResult.NOT_DUE, FulfilResult.LEASED):
        key_sweep_schedule(order_pk=order_pk)
    return outcome


def _order_fulfil(*, order_pk: int) -> FulfilOutcome:
    order = AITokenOrder.objects.filter(pk=order_pk).first()
    now = timezone.now()
    if order is not None and order.status == S.FULFILLING:
        remaining = fulfil_lease_remaining(order, now=now)
        if remaining is not None and remaining > 0:
            return FulfilOutcome(order_pk, FulfilResult.LEASED, order.fulfil_attempts, remaining + 0.5)
        if remaining is None or not fulfil_lease_take_over(order=order, now=now):
            return FulfilOutcome(order_pk, FulfilResult.SKIPPED)
        return _fulfil_claimed(order, now=now)
    if order is None or order.status != S.PAID:
        return FulfilOutcome(order_pk, FulfilResult.SKIPPED)
    if order.fulfil_retry_at is not None and order.fulfil_retry_at > now:
        # A duplicate message (e.g. the one sent on entering `paid` again) during backoff.
        return FulfilOutcome(
            order_pk, FulfilResult.NOT_DUE, order.fulfil_attempts, (order.fulfil_retry_at - now).total_seconds()
        )

    if not fulfil_lease_claim(order=order, now=now):
        return FulfilOutcome(order_pk, FulfilResult.SKIPPED)
    return _fulfil_claimed(order, now=now)


def _fulfil_claimed(order: AITokenOrder, *, now: datetime) -> FulfilOutcome:
    order_pk = order.pk
    order.refresh_from_db()
    attempt = order.fulfil_attempts

    if attempt > settings.FULFIL_MAX_ATTEMPTS:
        return fulfil_fail(
            order,
            reason=OrderReason.RETRIES_EXHAUSTED,
            message=f"Gave up after {attempt - 1} attempts",
            urgent=False,
        )

    history = _event_history(order)
    violations = _rule_violations(order, paid_events=history["paid"])
    if violations:
        return fulfil_fail(
            order,
            reason=OrderReason.RULE_VIOLATION,
            message="Rule check failed at the point of purchase; nothing was bought",
            urgent=True,
            details={"violations": violations},
        )

    client = get_openrouter_client()
    if order.top_up_of_id is not None:  # a top-up raises the customer's key limit instead of buying a key
        return top_up_fulfil(order=order, client=client, attempt=attempt)
    expires_at = _key_expiry(now)
    try:
        if history["claims"] > 1:
            # An earlier attempt may have created a key and died before storing it.
            _delete_orphan_keys(client, order)
        if not fulfil_lease_renew(order=order, attempt=attempt):
            return FulfilOutcome(order_pk, FulfilResult.SKIPPED, attempt)  # taken over: buy nothing
        created = client.create_key(name=key_name(order), limit=order.base_usd_cost, expires_at=expires_at)
    except TRANSIENT_ERRORS as exc:
        return fulfil_back_off(order, exc)
    except OpenRouterPaymentRequired:
        return fulfil_fail(
            order,
            reason=OrderReason.OUT_OF_CREDITS,
            message="OpenRouter is out of credits (402); top the account up, then retry the order",
            urgent=True,
        )
    except (OpenRouterAuthError, OpenRouterForbidden) as exc:
        return fulfil_fail(
            order,
            reason=OrderReason.CONFIGURATION,
            message=f"OpenRouter refused the management key ({exc.status_code}); check OPENROUTER_API_KEY",
            urgent=True,
        )
    except OpenRouterError as exc:
        return fulfil_fail(
            order,
            reason=OrderReason.CONFIGURATION,
            message=f"OpenRouter rejected the key request ({exc.status_code}: {type(exc).__name__})",
            urgent=True,
        )

    # The key now exists at OpenRouter and its plaintext exists only in this process.
    if not _store_key(order, created, attempt=attempt, expires_at=expires_at):
        # The order moved on while we were buying (reset by the reconciler, or another worker
        # delivered): this key belongs to nobody. Delete it now; the reconciler disables it if not.
        _discard_key(client, order, created.info.hash)
        return FulfilOutcome(order_pk, FulfilResult.SKIPPED, attempt)
    _notify_delivered(order)
    return FulfilOutcome(order_pk, FulfilResult.DELIVERED, attempt)


def _event_history(order: AITokenOrder) -> dict[str, int]:
    return OrderEvent.objects.filter(order_id=order.pk).aggregate(
        paid=Count("id", filter=Q(to_status=S.PAID)),
        claims=Count("id", filter=Q(to_status=S.FULFILLING)),
    )


def _rule_violations(order: AITokenOrder, *, paid_events: int) -> list[str]:
    """The money rules 1–3 once more, at the point of purchase (docs/ARCHITECTURE.md, "Money rules").

     Each string names a broken rule (no secrets)."""
    problems: list[str] = []
    # Money rules 1 and 2: the order reached `paid` through a verified payment.
    if order.paid_at is None:
        problems.append("no verified payment time (paid_at) recorded")
    if paid_events < 1:
        problems.append("no event shows the order entering paid")
    if order.key_hash:
        problems.append("the order already holds a key")
    # Money rule 3: cap, markup, total.
    cap = min(Decimal(settings.MAX_ORDER_USD), HARD_CAP_USD)
    base, markup, total = order.base_usd_cost, order.markup_amount, order.total_usd_cost
    if total > cap:
        problems.append(f"total {total} exceeds the cap {cap}")
    if not (Decimal(0) < base <= cap):
        problems.append(f"key limit {base} is not within (0, {cap}]")
    # The configured rate may be lower than 20%, never higher; the constant holds even if settings lie.
    max_rate = min(Decimal(settings.MARKUP_RATE), HARD_MARKUP_RATE)
    if order.markup_rate > max_rate or order.markup_rate < 0:
        problems.append(f"markup rate {order.markup_rate} exceeds the store's {max_rate}")
    if markup != (base * order.markup_rate).quantize(CENT, rounding=ROUND_HALF_UP):
        problems.append(f"markup {markup} is not {order.markup_rate} of {base} rounded half-up")
    if total != base + markup:
        problems.append(f"total {total} is not base {base} + markup {markup}")
    if order.token_count < 100:
        problems.append(f"token count {order.token_count} is below 100")
    # The key's limit buys exactly the ordered tokens: re-quote from the order's price snapshot.
    try:
        current = rules_from_settings()
        rules = PricingRules(
            max_order_usd=current.max_order_usd,
            markup_rate=order.markup_rate,
            min_tokens=current.min_tokens,
            min_order_usd=current.min_order_usd,
        )
        requote = quote(
            model_id=order.model_id,
            prompt_price=order.prompt_price,
            completion_price=order.completion_price,
            token_count=order.token_count,
            rules=rules,
        )
    except Exception as exc:  # a snapshot that cannot even be priced is a violation, not a crash
        problems.append(f"re-quote failed ({type(exc).__name__})")
    else:
        if requote.base_usd_cost != base:
            problems.append(
                f"re-quoted base {requote.base_usd_cost} for {order.token_count} tokens differs from {base}"
            )
        if requote.total_usd_cost != total:
            problems.append(f"re-quoted total {requote.total_usd_cost} differs from {total}")
    return problems


def _key_expiry(now: datetime) -> datetime | None:
    days = int(settings.KEY_EXPIRES_DAYS)
    return now + timedelta(days=days) if days > 0 else None


def _delete_orphan_keys(client: OpenRouterClient, order: AITokenOrder) -> None:
    """Delete keys named for this order: they come from attempts that never stored them."""
    for info in client.list_keys():
        if order_id_from_key_name(info.name) != order.order_id or info.hash == order.key_hash:
            continue
        with contextlib.suppress(OpenRouterNotFound):
            client.delete_key(info.hash)
        order_record_event(
            order=order,
            source=EventSource.WORKER,
            message="Deleted a key left by an earlier attempt",
            details={"key_hash": info.hash},
        )
        logger.warning("order=%s deleted orphan key hash=%s", order.order_id, info.hash)


def _store_key(order: AITokenOrder, created: CreatedKey, *, attempt: int, expires_at: datetime | None) -> bool:
    """Store hash + encrypted key and mark the order delivered, in one transaction."""
    info = created.info
    now = timezone.now()
    return fulfil_lease_end(
        order=order,
        # Only the attempt holding the claim may deliver: if the reconciler reset this claim and a
        # newer attempt claimed the order, that attempt may already have deleted this key as an orphan.
        attempt=attempt,
        to_status=S.DELIVERED,
        message="Key created and stored",
        details={"key_hash": info.hash, "limit_usd": str(order.base_usd_cost), "attempt": attempt},
        updates={
            "key_hash": info.hash,
            "key_encrypted": encrypt(created.key),
            "key_expires_at": created.info.expires_at or expires_at,
            "delivered_at": now,
            "key_usage_usd": info.usage,
            "key_limit_remaining_usd": info.limit_remaining,
            "key_usage_checked_at": now,
            "key_disabled": bool(info.disabled),
        },
    )


def _discard_key(client: OpenRouterClient, order: AITokenOrder, key_hash: str) -> None:
    try:
        client.delete_key(key_hash)
    except OpenRouterNotFound:
        pass
    except OpenRouterError as exc:
        logger.warning(
            "order=%s could not delete unstored key hash=%s (%s)", order.order_id, key_hash, type(exc).__name__
        )
        return
    order_record_event(
        order=order,
        source=EventSource.WORKER,
        message="Deleted a key created after the order had moved on",
        details={"key_hash": key_hash},
    )


def _notify_delivered(order: AITokenOrder) -> None:
    """Tell staff. The customer's mail (a link, never the key) goes out when the order enters `delivered`."""
    alert_staff_safely(
        kind="fulfilment_delivered",
        subject=f"Order {order.order_id} delivered",
        body=(
            f"Order {order.order_id} was delivered: {order.token_count:,} tokens of {order.model_id}, "
            f"key limit ${order.base_usd_cost}, paid ${order.total_usd_cost} in {order.crypto_type}.\n"
            f"Key hash: {order.key_hash}"
        ),
    )


__all__ = [
    "FulfilOutcome",
    "FulfilResult",
    "key_name",
    "order_fulfil",
    "order_id_from_key_name",
    "retry_delay",
]
