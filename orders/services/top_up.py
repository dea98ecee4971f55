"""Top-ups: add tokens to a key the customer already holds, by raising its USD limit — once.

A top-up is an ordinary order (own id, price, payment) that names the order that delivered the
key (`top_up_of`). Checkout refuses a key that cannot take more tokens before anything is
written or sent to the gateway (`top_up_key_order`). After the payment is verified,
`order_fulfil` claims the order, re-checks the purchase rules exactly as for a new key, and
hands over to `top_up_fulfil` instead of buying a key.

Why the raise is shaped this way (OpenRouter's `PATCH /keys/{hash}` `limit` is absolute):
- The target limit is decided and committed on the top-up order *before* OpenRouter is called,
  under a row lock on the key's own order, so top-ups of one key are decided one at a time.
- While one top-up of a key has a target that is not yet confirmed, other top-ups of that key
  wait (back off and retry): they never stack targets on an unconfirmed one, so a retry that
  re-sends an older absolute value can never lower a newer limit.
- Every attempt first re-reads the key: limit already at the target → the raise was applied by an
  earlier attempt whose answer was lost, finish without calling again; limit at the confirmed
  value → send the same absolute target; anything else → staff (never lower a limit).
- The top-up's `delivered` and the key order's new confirmed limit are written in one transaction.

Why this module is long: checkout's refusals, the exactly-once raise and what the pages show of a
key's top-ups all read the same few fields under the same rules; keeping them together keeps
those rules in one place.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from openrouter.client import (
    TRANSIENT_ERRORS,
    KeyInfo,
    OpenRouterClient,
    OpenRouterError,
    OpenRouterNotFound,
    OpenRouterPaymentRequired,
)
from orders.alerts import alert_staff_safely
from orders.models import AITokenOrder, EventSource, OrderReason, OrderStatus
from orders.services import fulfil_outcome as f  # how an attempt ends: back off, or fail to staff
from orders.services.fulfil_lease import fulfil_lease_end
from orders.services.transitions import order_record_event
from storefront.encryption import InvalidToken, decrypt

logger = logging.getLogger("orders.top_up")

S = OrderStatus
ORDER_ID_RE = re.compile(r"TS-[A-Za-z0-9_-]{8,46}")
# A top-up that has a target but no confirmation yet holds its key: others of that key wait.
IN_FLIGHT_STATUSES = (S.PAID, S.FULFILLING, S.FAILED)

UNKNOWN_KEY_MESSAGE = "We couldn't find that key among your orders. Open the order that delivered it and try again."
NOT_DELIVERED_MESSAGE = "That order's key hasn't been delivered yet, so tokens can't be added to it."
DISABLED_MESSAGE = "That key is disabled, so tokens can't be added to it. Please order a new key instead."
REFUND_OFFERED_MESSAGE = (
    "A refund is offered for that key's order, so tokens can't be added to it. Please order a new key instead."
)
EXPIRED_MESSAGE = "That key has expired, so tokens can't be added to it. Please order a new key instead."
TOP_UP_OF_TOP_UP_MESSAGE = (
    "That order added tokens to a key; to add more, use the order that delivered the key ({key_order_id})."
)


class TopUpRefused(Exception):
    """The named key cannot take a top-up; `message` is safe to show the customer."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def top_up_key_order(*, user, top_up_of: object) -> AITokenOrder:
    """The customer's delivered, live key order that `top_up_of` (an order id) names, or TopUpRefused.

    Unknown ids and other customers' orders get the same answer, so order ids cannot be probed.
    """
    if not isinstance(top_up_of, str) or not ORDER_ID_RE.fullmatch(top_up_of.strip()):
        raise TopUpRefused(UNKNOWN_KEY_MESSAGE)
    if user is None or not getattr(user, "is_authenticated", False):
        raise TopUpRefused(UNKNOWN_KEY_MESSAGE)
    key_order = AITokenOrder.objects.filter(order_id=top_up_of.strip(), user_id=user.pk).first()
    if key_order is None:
        raise TopUpRefused(UNKNOWN_KEY_MESSAGE)
    problem = key_order_problem(key_order)
    if problem:
        raise TopUpRefused(problem)
    return key_order


def key_order_problem(key_order: AITokenOrder, *, now=None) -> str:
    """Why this order's key cannot take a top-up ('' if it can). Database only, no remote call."""
    if key_order.top_up_of_id is not None:
        root_id = AITokenOrder.objects.filter(pk=key_order.top_up_of_id).values_list("order_id", flat=True).first()
        return TOP_UP_OF_TOP_UP_MESSAGE.format(key_order_id=root_id or "")
    if key_order.status != S.DELIVERED or not key_order.key_hash:
        return NOT_DELIVERED_MESSAGE
    if key_order.key_disabled:
        return DISABLED_MESSAGE
    if key_order.refundable_marked_at is not None:
        return REFUND_OFFERED_MESSAGE
    now = now or timezone.now()
    if key_order.key_expires_at is not None and key_order.key_expires_at <= now:
        return EXPIRED_MESSAGE
    return ""


# --- Fulfilment of a paid top-up (called by order_fulfil after the claim and the rule checks) -------


def top_up_fulfil(*, order: AITokenOrder, client: OpenRouterClient, attempt: int):
    """Raise the key's limit by this order's base cost, exactly once, and deliver the top-up."""
    decision = _decide_target(order=order, attempt=attempt)
    if isinstance(decision, str):
        return _refuse(order, decision)
    if decision is None:
        return _wait_for_other_top_up(order)
    key_order, target = decision
    confirmed = target - order.base_usd_cost

    try:
        info = client.get_key(key_order.key_hash)
        if info.disabled:
            return _release_and_fail(order, key_order, "The key was disabled at OpenRouter; nothing was added")
        if info.expires_at is not None and info.expires_at <= timezone.now():
            return _release_and_fail(order, key_order, "The key has expired at OpenRouter; nothing was added")
        if info.limit == target:
            order_record_event(
                order=order,
                source=EventSource.WORKER,
                message="Key limit already at the target (an earlier attempt applied it)",
                details={"key_hash": key_order.key_hash, "limit_usd": str(target)},
            )
        elif info.limit == confirmed:
            info = client.update_key(key_order.key_hash, limit=target)
            if info.limit != target:
                return _keep_and_fail(
                    order, f"OpenRouter answered the raise with limit {info.limit}, not {target}"
                )
        else:
            # Neither ours nor the last confirmed value: someone changed the key by hand. Never lower it.
            return _keep_and_fail(
                order, f"Key limit at OpenRouter is {info.limit}; expected {confirmed} or {target}"
            )
    except TRANSIENT_ERRORS as exc:
        return f.fulfil_back_off(order, exc)
    except OpenRouterNotFound:
        return _release_and_fail(order, key_order, "The key no longer exists at OpenRouter; nothing was added")
    except OpenRouterPaymentRequired:
        return f.fulfil_fail(
            order,
            reason=OrderReason.OUT_OF_CREDITS,
            message="OpenRouter is out of credits (402); top the account up, then retry the order",
            urgent=True,
        )
    except OpenRouterError as exc:
        return f.fulfil_fail(
            order,
            reason=OrderReason.CONFIGURATION,
            message=f"OpenRouter rejected the limit raise ({exc.status_code}: {type(exc).__name__})",
            urgent=True,
        )

    if not _deliver(order=order, key_order=key_order, target=target, info=info, attempt=attempt):
        return f.FulfilOutcome(order.pk, f.FulfilResult.SKIPPED, attempt)
    _notify_topped_up(order, key_order=key_order, target=target)
    return f.FulfilOutcome(order.pk, f.FulfilResult.DELIVERED, attempt)


def _decide_target(*, order: AITokenOrder, attempt: int) -> tuple[AITokenOrder, Decimal] | str | None:
    """Lock the key's order, then keep this top-up's stored target or store a new one.

    Returns (key order, target); None while another top-up of the key is unconfirmed; a string
    naming a rule the key breaks.
    """
    with transaction.atomic():
        key_order = AITokenOrder.objects.select_for_update().filter(pk=order.top_up_of_id).first()
        if key_order is None:
            return "the key's order no longer exists"
        fresh = AITokenOrder.objects.filter(pk=order.pk).values(
            "top_up_target_limit_usd", "status", "fulfil_attempts"
        ).first()
        if fresh is None or fresh["status"] != S.FULFILLING or fresh["fulfil_attempts"] != attempt:
            return "the claim moved on"
        if fresh["top_up_target_limit_usd"] is not None:
            return key_order, fresh["top_up_target_limit_usd"]
        problem = _key_order_rules(order, key_order)
        if problem:
            return problem
        blocking = (
            AITokenOrder.objects.filter(top_up_of_id=key_order.pk, top_up_target_limit_usd__isnull=False)
            .exclude(pk=order.pk)
            .filter(status__in=IN_FLIGHT_STATUSES)
            .exists()
        )
        if blocking:
            return None
        target = key_order.confirmed_key_limit + order.base_usd_cost
        stored = AITokenOrder.objects.filter(pk=order.pk, status=S.FULFILLING, fulfil_attempts=attempt).update(
            top_up_target_limit_usd=target, updated_at=timezone.now()
        )
        if stored != 1:
            return "the claim moved on"
        order_record_event(
            order=order, source=EventSource.WORKER, message="Top-up target limit decided",
            details={
                "key_order": key_order.order_id,
                "key_hash": key_order.key_hash,
                "confirmed_limit_usd": str(key_order.confirmed_key_limit),
                "target_limit_usd": str(target),
            },
        )
    order.top_up_target_limit_usd = target
    return key_order, target


def _key_order_rules(order: AITokenOrder, key_order: AITokenOrder) -> str:
    """The checkout rules again, at the point of purchase (the key may have changed since)."""
    if key_order.user_id != order.user_id:
        return "the key belongs to another customer"
    return key_order_problem(key_order)


def _deliver(*, order: AITokenOrder, key_order: AITokenOrder, target: Decimal, info: KeyInfo, attempt: int) -> bool:
    """Mark the top-up delivered and record the key's new confirmed limit, in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        locked = AITokenOrder.objects.select_for_update().filter(pk=key_order.pk).first()
        moved = fulfil_lease_end(
            order=order,
            attempt=attempt,
            to_status=S.DELIVERED,
            message="Key limit raised",
            details={"key_hash": key_order.key_hash, "limit_usd": str(target), "attempt": attempt},
            updates={"delivered_at": now},
        )
        if not moved:
            return False
        if locked.confirmed_key_limit < target:  # never lower what is recorded either
            AITokenOrder.objects.filter(pk=key_order.pk).update(
                key_limit_usd=target,
                key_usage_usd=info.usage,
                key_limit_remaining_usd=info.limit_remaining,
                key_usage_checked_at=now,
                updated_at=now,
            )
        order_record_event(
            order=key_order,
            source=EventSource.WORKER,
            message=f"Limit raised to ${target} by top-up {order.order_id}",
            details={"top_up": order.order_id, "limit_usd": str(target)},
        )
    return True


def _wait_for_other_top_up(order: AITokenOrder):
    """Another top-up of this key is between its decision and its confirmation: try again later."""
    return f.fulfil_retry_later(
        order,
        retry_message="Another top-up of this key is being applied",
        exhausted_message="Another top-up of the same key stayed unconfirmed",
    )


def _refuse(order: AITokenOrder, problem: str):
    if problem == "the claim moved on":
        return f.FulfilOutcome(order.pk, f.FulfilResult.SKIPPED, order.fulfil_attempts)
    return f.fulfil_fail(
        order,
        reason=OrderReason.RULE_VIOLATION,
        message=f"Top-up refused at the point of purchase ({problem}); nothing was added",
        urgent=True,
        details={"violations": [problem]},
    )


def _release_and_fail(order: AITokenOrder, key_order: AITokenOrder, message: str):
    """The raise was certainly not applied: forget the target so the key's other top-ups proceed."""
    outcome = f.fulfil_fail(order, reason=OrderReason.RULE_VIOLATION, message=message, urgent=True)
    if outcome.result == f.FulfilResult.FAILED:
        AITokenOrder.objects.filter(pk=order.pk, status=S.FAILED).update(top_up_target_limit_usd=None)
    return outcome


def _keep_and_fail(order: AITokenOrder, message: str):
    """The outcome at OpenRouter is not what the store expects: staff decide; the target is kept."""
    return f.fulfil_fail(order, reason=OrderReason.CONFIGURATION, message=message, urgent=True)


def _notify_topped_up(order: AITokenOrder, *, key_order: AITokenOrder, target: Decimal) -> None:
    """Tell staff. The customer's mail goes out when the order enters `delivered` (orders.customer_mail)."""
    alert_staff_safely(
        kind="fulfilment_topped_up",
        subject=f"Order {order.order_id} delivered (top-up)",
        body=(
            f"Order {order.order_id} added {order.token_count:,} tokens of {order.model_id} "
            f"(${order.base_usd_cost}) to the key of order {key_order.order_id}; its limit is now ${target}. "
            f"Paid ${order.total_usd_cost} in {order.crypto_type}."
        ),
    )


# --- What the order pages show (database only) ------------------------------------------------------

# The status box's words for a top-up, where they differ from a new key's.
STATUS_EXPLANATIONS: dict[str, str] = {
    S.PAID: "Your payment has arrived. We're adding the tokens to your key now — this takes a few seconds.",
    S.FULFILLING: "Your payment has arrived and we're raising your key's spending limit right now.",
    S.DELIVERED: "All done: the tokens were added to your existing key. Keep using it as before.",
}


@dataclass(frozen=True)
class TopUpLine:
    order_id: str
    status: str
    status_label: str
    token_count: int
    model_id: str
    base_usd_cost: Decimal
    created_at: object


@dataclass(frozen=True)
class KeyTopUps:
    """The key's own order: its total limit, usage and every top-up."""

    limit_usd: Decimal
    used_usd: Decimal | None
    remaining_usd: Decimal | None
    lines: tuple[TopUpLine, ...]
    can_top_up: bool
    top_up_url: str


@dataclass(frozen=True)
class TopUpOf:
    """A top-up order: which key it added to."""

    key_order_id: str
    key_label: str
    token_count: int
    base_usd_cost: Decimal
    delivered: bool


def key_label(key_order: AITokenOrder) -> str:
    """"sk-or-…abcd": enough to recognise a key, nothing to use it."""
    if not key_order.key_encrypted:
        return "sk-or-…"
    try:
        return "sk-or-…" + decrypt(key_order.key_encrypted)[-4:]
    except InvalidToken:
        return "sk-or-…"


def top_up_carry(*, user, top_up_of: object) -> dict:
    """Context that carries a top-up through catalogue → review → checkout as plain links and fields.

    `top_up` (key order id and label) when the key can take tokens, `top_up_query` to append to
    order links, `top_up_error` (a customer-safe message) when it cannot. Nothing without `top_up_of`.
    """
    if top_up_of in (None, ""):
        return {}
    try:
        key_order = top_up_key_order(user=user, top_up_of=top_up_of)
    except TopUpRefused as refused:
        return {"top_up_error": refused.message}
    return {
        "top_up": {"key_order_id": key_order.order_id, "key_label": key_label(key_order)},
        "top_up_query": "&" + urlencode({"top_up_of": key_order.order_id}),
    }


def top_up_context(order: AITokenOrder, *, viewer) -> dict:
    """Context for `orders/_topup.html`: two queries at most, never a remote call."""
    owner = getattr(viewer, "pk", None) == order.user_id
    if order.top_up_of_id is not None:
        key_order = AITokenOrder.objects.only("order_id", "key_encrypted").get(pk=order.top_up_of_id)
        return {
            "top_up_of": TopUpOf(
                key_order_id=key_order.order_id,
                key_label=key_label(key_order) if owner else "sk-or-…",
                token_count=order.token_count,
                base_usd_cost=order.base_usd_cost,
                delivered=order.status == S.DELIVERED,
            )
        }
    if order.status != S.DELIVERED or not order.key_hash:
        return {}
    rows = (
        AITokenOrder.objects.filter(top_up_of_id=order.pk)
        .order_by("created_at", "pk")
        .values("order_id", "status", "token_count", "model_id", "base_usd_cost", "created_at")
    )
    lines = tuple(TopUpLine(status_label=S(row["status"]).label, **row) for row in rows)
    return {
        "key_top_ups": KeyTopUps(
            limit_usd=order.confirmed_key_limit,
            used_usd=order.key_usage_usd,
            remaining_usd=order.key_limit_remaining_usd,
            lines=lines,
            can_top_up=owner and not key_order_problem(order),
            top_up_url=reverse("orders:catalogue")
            + "?"
            + urlencode({"model": order.model_id, "top_up_of": order.order_id}),
        )
    }


__all__ = [
    "KeyTopUps",
    "TopUpOf",
    "TopUpRefused",
    "key_label",
    "key_order_problem",
    "top_up_carry",
    "top_up_context",
    "top_up_fulfil",
    "top_up_key_order",
]
