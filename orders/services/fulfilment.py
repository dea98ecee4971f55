"""Fulfilment: the one place in the store that buys anything from OpenRouter.

`order_fulfil` turns one verified, paid order into exactly one OpenRouter key whose USD limit
is the order's base cost (rule 1). It is safe to call any number of times, from any number of
workers, in any order: the claim (`paid → fulfilling`) is a conditional UPDATE, so only one
caller proceeds; the rules are checked again right before buying; a key left behind by a
crashed attempt is deleted before a new one is created; and the key is stored in the same
transaction that marks the order delivered.

`fulfilment_reconcile` (beat) is the safety net: it resets orders stuck in `fulfilling`,
re-enqueues `paid` orders that nothing is working on, and disables any key named for an order
that does not hold it. Together: at most one live key per order, and every paid order ends
`delivered` or in front of staff.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, F, Q
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
    OpenRouterRateLimited,
    get_openrouter_client,
)
from orders.alerts import alert_staff
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
from orders.services.transitions import order_record_event, order_transition
from storefront.encryption import encrypt

logger = logging.getLogger("orders.fulfilment")

S = OrderStatus
CENT = Decimal("0.01")
KEY_NAME_PREFIX = "Token Store "
# Order ids are "TS-" + token_urlsafe(12); a key "carries an order id" when its name contains one.
ORDER_ID_IN_NAME = re.compile(r"TS-[A-Za-z0-9_-]{8,46}")
# Longest Retry-After we honour before falling back to our own backoff cap.
MAX_RETRY_AFTER_SECONDS = 900.0


class FulfilResult(StrEnum):
    DELIVERED = "delivered"
    SKIPPED = "skipped"  # not in `paid` (someone else has it, or it is not ours to buy)
    NOT_DUE = "not_due"  # backing off after a transient error; a retry is scheduled
    RETRY = "retry"  # transient OpenRouter error: back in `paid`, retry in `retry_in` seconds
    FAILED = "failed"  # in front of staff


@dataclass(frozen=True)
class FulfilOutcome:
    order_pk: int
    result: FulfilResult
    attempt: int = 0
    retry_in: float | None = None
    reason: str = ""


@dataclass
class ReconcileReport:
    reset: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    disabled_keys: list[str] = field(default_factory=list)
    unknown_keys: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def key_name(order: AITokenOrder) -> str:
    """The OpenRouter key name: it carries the order id so a crashed attempt's key can be found."""
    return f"{KEY_NAME_PREFIX}{order.order_id}"


def order_id_from_key_name(name: str | None) -> str | None:
    match = ORDER_ID_IN_NAME.search(name or "")
    return match.group(0) if match else None


def retry_delay(*, attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before attempt `attempt + 1`: exponential, jittered, capped; Retry-After wins if longer."""
    base = max(0.0, float(settings.FULFIL_RETRY_BASE_SECONDS))
    cap = max(0.0, float(settings.FULFIL_RETRY_MAX_SECONDS))
    backoff = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = backoff * random.uniform(0.75, 1.25)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER_SECONDS))
    return round(delay, 3)


# --- The purchase ---------------------------------------------------------------------------


def order_fulfil(*, order_pk: int) -> FulfilOutcome:
    """Buy the ordered tokens as one OpenRouter key and deliver it — once, whoever calls.

    Only orders in `paid` are considered; anything else (pending, expired, needs_review,
    failed, refunded, delivered, or already being fulfilled by another worker) returns
    `SKIPPED` without touching OpenRouter.
    """
    order = AITokenOrder.objects.filter(pk=order_pk).first()
    if order is None or order.status != S.PAID:
        return FulfilOutcome(order_pk, FulfilResult.SKIPPED)
    now = timezone.now()
    if order.fulfil_retry_at is not None and order.fulfil_retry_at > now:
        # A duplicate message (e.g. the one sent on entering `paid` again) during backoff.
        return FulfilOutcome(
            order_pk, FulfilResult.NOT_DUE, order.fulfil_attempts, (order.fulfil_retry_at - now).total_seconds()
        )

    claimed = order_transition(
        order=order,
        from_status=S.PAID,
        to_status=S.FULFILLING,
        source=EventSource.WORKER,
        message="Claimed for fulfilment",
        updates={"fulfil_attempts": F("fulfil_attempts") + 1, "fulfilling_since": now, "fulfil_retry_at": None},
    )
    if not claimed:
        return FulfilOutcome(order_pk, FulfilResult.SKIPPED)
    order.refresh_from_db()
    attempt = order.fulfil_attempts

    if attempt > settings.FULFIL_MAX_ATTEMPTS:
        return _fail(
            order,
            reason=OrderReason.RETRIES_EXHAUSTED,
            message=f"Gave up after {attempt - 1} attempts",
            urgent=False,
        )

    history = _event_history(order)
    violations = _rule_violations(order, paid_events=history["paid"])
    if violations:
        return _fail(
            order,
            reason=OrderReason.RULE_VIOLATION,
            message="Rule check failed at the point of purchase; nothing was bought",
            urgent=True,
            details={"violations": violations},
        )

    client = get_openrouter_client()
    if order.top_up_of_id is not None:  # a top-up raises the customer's key limit instead of buying a key
        from orders.services.top_up import top_up_fulfil

        return top_up_fulfil(order=order, client=client, attempt=attempt)
    expires_at = _key_expiry(now)
    try:
        if history["claims"] > 1:
            # An earlier attempt may have created a key and died before storing it.
            _delete_orphan_keys(client, order)
        created = client.create_key(name=key_name(order), limit=order.base_usd_cost, expires_at=expires_at)
    except TRANSIENT_ERRORS as exc:
        return _back_off(order, exc)
    except OpenRouterPaymentRequired:
        return _fail(
            order,
            reason=OrderReason.OUT_OF_CREDITS,
            message="OpenRouter is out of credits (402); top the account up, then retry the order",
            urgent=True,
        )
    except (OpenRouterAuthError, OpenRouterForbidden) as exc:
        return _fail(
            order,
            reason=OrderReason.CONFIGURATION,
            message=f"OpenRouter refused the management key ({exc.status_code}); check OPENROUTER_API_KEY",
            urgent=True,
        )
    except OpenRouterError as exc:
        return _fail(
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
    """Rules 1–3 once more, at the point of purchase. Each string names a broken rule (no secrets)."""
    problems: list[str] = []
    # Rule 1/2: the order reached `paid` through a verified payment.
    if order.paid_at is None:
        problems.append("no verified payment time (paid_at) recorded")
    if paid_events < 1:
        problems.append("no event shows the order entering paid")
    if order.key_hash:
        problems.append("the order already holds a key")
    # Rule 3: cap, markup, total.
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
    return order_transition(
        order=order,
        from_status=S.FULFILLING,
        to_status=S.DELIVERED,
        source=EventSource.WORKER,
        message="Key created and stored",
        details={"key_hash": info.hash, "limit_usd": str(order.base_usd_cost), "attempt": attempt},
        # Only the attempt holding the claim may deliver: if the reconciler reset this claim and a
        # newer attempt claimed the order, that attempt may already have deleted this key as an orphan.
        guard={"fulfil_attempts": attempt},
        updates={
            "key_hash": info.hash,
            "key_encrypted": encrypt(created.key),
            "key_expires_at": created.info.expires_at or expires_at,
            "delivered_at": now,
            "fulfilling_since": None,
            "fulfil_retry_at": None,
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


def _back_off(order: AITokenOrder, exc: OpenRouterError) -> FulfilOutcome:
    attempt = order.fulfil_attempts
    error = {"error": type(exc).__name__, "status_code": exc.status_code}
    if attempt >= settings.FULFIL_MAX_ATTEMPTS:
        return _fail(
            order,
            reason=OrderReason.RETRIES_EXHAUSTED,
            message=f"OpenRouter kept failing ({type(exc).__name__}); gave up after {attempt} attempts",
            urgent=False,
            details=error,
        )
    retry_after = exc.retry_after if isinstance(exc, OpenRouterRateLimited) else None
    delay = retry_delay(attempt=attempt, retry_after=retry_after)
    moved = order_transition(
        order=order,
        from_status=S.FULFILLING,
        to_status=S.PAID,
        source=EventSource.WORKER,
        message=f"OpenRouter transient error; retrying in {delay:.1f}s",
        details={**error, "attempt": attempt, "retry_in": delay},
        updates={"fulfilling_since": None, "fulfil_retry_at": timezone.now() + timedelta(seconds=delay)},
        guard={"fulfil_attempts": attempt},  # never un-claim a newer attempt that is buying right now
    )
    logger.warning("order=%s attempt=%s transient %s; retry in %.1fs", order.order_id, attempt, error["error"], delay)
    if not moved:
        return FulfilOutcome(order.pk, FulfilResult.SKIPPED, attempt)
    return FulfilOutcome(order.pk, FulfilResult.RETRY, attempt, delay)


def _fail(
    order: AITokenOrder,
    *,
    reason: str,
    message: str,
    urgent: bool,
    details: dict | None = None,
) -> FulfilOutcome:
    moved = order_transition(
        order=order,
        from_status=S.FULFILLING,
        to_status=S.FAILED,
        source=EventSource.WORKER,
        message=message,
        reason=reason,
        details=details or {},
        updates={"fulfilling_since": None, "fulfil_retry_at": None},
        guard={"fulfil_attempts": order.fulfil_attempts},  # only the attempt holding the claim
    )
    if not moved:
        return FulfilOutcome(order.pk, FulfilResult.SKIPPED, order.fulfil_attempts)
    lines = [
        f"Order {order.order_id} failed: {OrderReason(reason).label}.",
        message,
        f"Attempts: {order.fulfil_attempts}. Base cost (key limit): ${order.base_usd_cost}.",
    ]
    for item in (details or {}).get("violations", []):
        lines.append(f"- {item}")
    lines.append("Nothing more will be bought for this order until staff retry or refund it.")
    _alert(
        kind=f"fulfilment_failed_{reason}",
        subject=f"Order {order.order_id} failed: {OrderReason(reason).label}",
        body="\n".join(lines),
        urgent=urgent,
    )
    return FulfilOutcome(order.pk, FulfilResult.FAILED, order.fulfil_attempts, reason=reason)


def _alert(*, kind: str, subject: str, body: str, urgent: bool = False) -> None:
    """Alerts inform; they never break or undo a purchase decision already committed."""
    try:
        alert_staff(kind=kind, subject=subject, body=body, urgent=urgent)
    except Exception as exc:
        logger.error("staff alert %s not sent (%s)", kind, type(exc).__name__)


def _notify_delivered(order: AITokenOrder) -> None:
    """Tell the customer (a link, never the key) and staff. A mail failure never undoes a delivery."""
    from orders.emails import send_tokens_ready  # looked up at call time (patchable in tests)

    try:
        send_tokens_ready(order=order)
    except Exception as exc:
        logger.error("order=%s tokens-ready email failed (%s)", order.order_id, type(exc).__name__)
    _alert(
        kind="fulfilment_delivered",
        subject=f"Order {order.order_id} delivered",
        body=(
            f"Order {order.order_id} was delivered: {order.token_count:,} tokens of {order.model_id}, "
            f"key limit ${order.base_usd_cost}, paid ${order.total_usd_cost} in {order.crypto_type}.\n"
            f"Key hash: {order.key_hash}"
        ),
    )


# --- Staff -----------------------------------------------------------------------------------


def order_disable_key(*, order: AITokenOrder, actor=None) -> bool:
    """Disable a delivered key at OpenRouter (abuse, refund): the customer can no longer spend it.

    Returns False when the order holds no key. OpenRouter errors propagate so staff see them.
    """
    if not order.key_hash:
        return False
    info = get_openrouter_client().update_key(order.key_hash, disabled=True)
    AITokenOrder.objects.filter(pk=order.pk).update(
        key_disabled=True,
        key_usage_usd=info.usage,
        key_limit_remaining_usd=info.limit_remaining,
        key_usage_checked_at=timezone.now(),
    )
    order.key_disabled = True
    order_record_event(
        order=order,
        source=EventSource.STAFF,
        message="Key disabled at OpenRouter",
        details={"key_hash": order.key_hash},
        actor=actor,
    )
    return True


# --- Keeping the queue honest ------------------------------------------------------------------


def _inflight_key(order_pk: int) -> str:
    return f"fulfil-enqueued:{order_pk}"


def fulfilment_mark_enqueued(order_pk: int, *, countdown: float = 0) -> None:
    """Remember that a fulfil task for this order is queued, so the reconciler leaves it alone."""
    cache.set(_inflight_key(order_pk), 1, timeout=int(countdown) + int(settings.FULFIL_REQUEUE_AFTER_SECONDS) * 3)


def fulfilment_clear_enqueued(order_pk: int) -> None:
    """The queued task has run and scheduled nothing further: the order has nothing in flight."""
    cache.delete(_inflight_key(order_pk))


def fulfilment_enqueue(order_pk: int) -> None:
    from orders.tasks.fulfilment import fulfil_order

    fulfilment_mark_enqueued(order_pk)
    fulfil_order.delay(order_pk)


def fulfilment_reconcile() -> ReconcileReport:
    """Beat safety net: reset stuck claims, re-enqueue forgotten paid orders, disable stray keys."""
    report = ReconcileReport()
    now = timezone.now()

    stuck_before = now - timedelta(seconds=settings.FULFIL_STUCK_AFTER_SECONDS)
    stuck = AITokenOrder.objects.filter(status=S.FULFILLING).filter(
        Q(fulfilling_since__lt=stuck_before) | Q(fulfilling_since__isnull=True, updated_at__lt=stuck_before)
    )
    for order in stuck.only("pk", "order_id", "status")[:500]:
        # Entering `paid` enqueues the fulfil task on commit (transitions.py); mark it first so
        # a task that runs at once clears the mark rather than being shadowed by it.
        fulfilment_mark_enqueued(order.pk)
        if order_transition(
            order=order,
            from_status=S.FULFILLING,
            to_status=S.PAID,
            source=EventSource.RECONCILER,
            message="Stuck in fulfilling; reset for another attempt",
            updates={"fulfilling_since": None, "fulfil_retry_at": None},
        ):
            report.reset.append(order.order_id)
        else:
            fulfilment_clear_enqueued(order.pk)

    idle_before = now - timedelta(seconds=settings.FULFIL_REQUEUE_AFTER_SECONDS)
    idle = list(
        AITokenOrder.objects.filter(status=S.PAID, updated_at__lt=idle_before)
        .filter(Q(fulfil_retry_at__isnull=True) | Q(fulfil_retry_at__lt=idle_before))
        .values_list("pk", "order_id")[:500]
    )
    queued = cache.get_many([_inflight_key(pk) for pk, _ in idle]) if idle else {}
    for pk, order_id in idle:
        if _inflight_key(pk) in queued:
            continue
        fulfilment_enqueue(pk)
        report.requeued.append(order_id)

    _disable_stray_keys(report)

    if report.reset or report.requeued or report.disabled_keys or report.unknown_keys or report.errors:
        logger.warning(
            "reconcile reset=%d requeued=%d disabled=%d unknown=%d errors=%d",
            len(report.reset),
            len(report.requeued),
            len(report.disabled_keys),
            len(report.unknown_keys),
            len(report.errors),
        )
    return report


def _disable_stray_keys(report: ReconcileReport) -> None:
    """Any live key named for an order that does not hold it is disabled and reported."""
    try:
        client = get_openrouter_client()
        keys = client.list_keys()
    except OpenRouterError as exc:
        report.errors.append(f"list_keys: {type(exc).__name__}")
        return
    named = [(info, order_id_from_key_name(info.name)) for info in keys if not info.disabled]
    named = [(info, oid) for info, oid in named if oid]
    if not named:
        return
    # Keys were listed first, orders read second: an order seen here is at least as new as the listing.
    orders = {
        o.order_id: o
        for o in AITokenOrder.objects.filter(order_id__in={oid for _, oid in named}).only(
            "pk", "order_id", "status", "key_hash"
        )
    }
    lines: list[str] = []
    for info, oid in named:
        order = orders.get(oid)
        if order is not None and order.key_hash == info.hash:
            continue
        if order is not None and order.status == S.FULFILLING:
            continue  # its attempt is running: it stores the key or deletes it
        if order is None:
            # Named like ours but no such order here (another deployment on the same account?).
            report.unknown_keys.append(info.hash)
            lines.append(f"- key {info.hash} ({info.name}): no such order in this store; left as is")
            continue
        try:
            client.update_key(info.hash, disabled=True)
        except OpenRouterNotFound:
            continue  # deleted meanwhile by the order's next attempt
        except OpenRouterError as exc:
            report.errors.append(f"disable {info.hash}: {type(exc).__name__}")
            lines.append(f"- key {info.hash} for {oid}: could not disable ({type(exc).__name__})")
            continue
        order_record_event(
            order=order,
            source=EventSource.RECONCILER,
            message="Disabled a key named for this order that the order does not hold",
            details={"key_hash": info.hash, "order_status": order.status},
        )
        report.disabled_keys.append(info.hash)
        lines.append(f"- key {info.hash} for {oid} (order {order.status}): disabled")
    if lines:
        _alert(
            kind="fulfilment_stray_keys",
            subject=f"{len(lines)} OpenRouter key(s) named for orders that do not hold them",
            body="The reconciler found keys that no order holds:\n" + "\n".join(lines),
            urgent=True,
        )


__all__ = [
    "FulfilOutcome",
    "FulfilResult",
    "ReconcileReport",
    "fulfilment_clear_enqueued",
    "fulfilment_enqueue",
    "fulfilment_mark_enqueued",
    "fulfilment_reconcile",
    "key_name",
    "order_disable_key",
    "order_fulfil",
    "order_id_from_key_name",
    "retry_delay",
]
