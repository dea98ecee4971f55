"""How a fulfilment attempt ends when it does not deliver: back off and retry, or fail to staff.

Shared by the key purchase (`orders.services.fulfilment`) and the limit raise of a top-up
(`orders.services.top_up`), so both end their attempts the same way: only the attempt that holds
the claim may move the order (the `fulfil_attempts` guard), a transient error goes back to `paid`
with an exponential, jittered delay, and the last try or a hard refusal puts the order in front
of staff with an alert.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.utils import timezone

from openrouter.client import OpenRouterError, OpenRouterNetworkError, OpenRouterRateLimited, OpenRouterServerError
from orders.alerts import alert_staff_safely
from orders.models import AITokenOrder, OrderReason, OrderStatus
from orders.services.fulfil_lease import fulfil_lease_end
from orders.services.key_sweep import key_sweep_schedule

logger = logging.getLogger("orders.fulfilment")

S = OrderStatus
# Longest Retry-After we honour before falling back to our own backoff cap.
MAX_RETRY_AFTER_SECONDS = 900.0
# A create call that failed like this may still have created the key (timeout, broken connection, 5xx).
UNKNOWN_OUTCOME_ERRORS = (OpenRouterNetworkError, OpenRouterServerError)


class FulfilResult(StrEnum):
    DELIVERED = "delivered"
    SKIPPED = "skipped"  # not in `paid` (someone else has it, or it is not ours to buy)
    NOT_DUE = "not_due"  # backing off after a transient error; a retry is scheduled
    LEASED = "leased"  # another attempt holds a live lease: look again in `retry_in` seconds
    RETRY = "retry"  # transient OpenRouter error: back in `paid`, retry in `retry_in` seconds
    FAILED = "failed"  # in front of staff


@dataclass(frozen=True)
class FulfilOutcome:
    order_pk: int
    result: FulfilResult
    attempt: int = 0
    retry_in: float | None = None
    reason: str = ""


def retry_delay(*, attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before attempt `attempt + 1`: exponential, jittered, capped; Retry-After wins if longer."""
    base = max(0.0, float(settings.FULFIL_RETRY_BASE_SECONDS))
    cap = max(0.0, float(settings.FULFIL_RETRY_MAX_SECONDS))
    backoff = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = backoff * random.uniform(0.75, 1.25)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER_SECONDS))
    return round(delay, 3)


def fulfil_back_off(order: AITokenOrder, exc: OpenRouterError) -> FulfilOutcome:
    outcome = _back_off_or_fail(order, exc)
    if isinstance(exc, UNKNOWN_OUTCOME_ERRORS):
        # The key may still be created after we gave up on the answer: sweep once it must have landed.
        key_sweep_schedule(order_pk=order.pk)
    return outcome


def _back_off_or_fail(order: AITokenOrder, exc: OpenRouterError) -> FulfilOutcome:
    return fulfil_retry_later(
        order,
        retry_message="OpenRouter transient error",
        exhausted_message=f"OpenRouter kept failing ({type(exc).__name__})",
        details={"error": type(exc).__name__, "status_code": exc.status_code},
        retry_after=exc.retry_after if isinstance(exc, OpenRouterRateLimited) else None,
    )


def fulfil_retry_later(
    order: AITokenOrder,
    *,
    retry_message: str,
    exhausted_message: str,
    details: dict | None = None,
    retry_after: float | None = None,
) -> FulfilOutcome:
    """Give the order back to `paid` with a backoff delay — or, after the last attempt, fail it to staff.

    `retry_message` and `exhausted_message` open the order event ("…; retrying in 2.0s", "…; gave up
    after 5 attempts"); `details` (no secrets) go into the event either way, and into the log line.
    """
    attempt = order.fulfil_attempts
    details = details or {}
    if attempt >= settings.FULFIL_MAX_ATTEMPTS:
        return fulfil_fail(
            order,
            reason=OrderReason.RETRIES_EXHAUSTED,
            message=f"{exhausted_message}; gave up after {attempt} attempts",
            urgent=False,
            details=details,
        )
    delay = retry_delay(attempt=attempt, retry_after=retry_after)
    moved = fulfil_lease_end(
        order=order,
        attempt=attempt,  # never un-claim a newer attempt that is buying right now
        to_status=S.PAID,
        message=f"{retry_message}; retrying in {delay:.1f}s",
        details={**details, "attempt": attempt, "retry_in": delay},
        updates={"fulfil_retry_at": timezone.now() + timedelta(seconds=delay)},
    )
    logger.warning("order=%s attempt=%s %s %s; retry in %.1fs", order.order_id, attempt, retry_message, details, delay)
    if not moved:
        return FulfilOutcome(order.pk, FulfilResult.SKIPPED, attempt)
    return FulfilOutcome(order.pk, FulfilResult.RETRY, attempt, delay)


def fulfil_fail(
    order: AITokenOrder,
    *,
    reason: str,
    message: str,
    urgent: bool,
    details: dict | None = None,
) -> FulfilOutcome:
    moved = fulfil_lease_end(
        order=order,
        attempt=order.fulfil_attempts,  # only the attempt holding the claim
        to_status=S.FAILED,
        message=message,
        reason=reason,
        details=details or {},
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
    alert_staff_safely(
        kind=f"fulfilment_failed_{reason}",
        subject=f"Order {order.order_id} failed: {OrderReason(reason).label}",
        body="\n".join(lines),
        urgent=urgent,
    )
    return FulfilOutcome(order.pk, FulfilResult.FAILED, order.fulfil_attempts, reason=reason)
