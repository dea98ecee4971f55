"""What happens after a status change commits: one registry of handlers per target status.

`order_transition` (the one writer of status) announces every committed change here and knows
nothing of what follows; the side effects of each status live in this module, so one status
change registers its consequences in one file. Registering another effect is one line:

    @on_enter(OrderStatus.REFUNDED)
    def _tell_the_customer(change: StatusChange) -> None: ...

Handlers run after the surrounding transaction commits (`transaction.on_commit`), so a
rolled-back change enqueues and sends nothing. They receive ids, never model instances, and
reload what they need. A handler must not decide anything about the order: it enqueues a task,
sends a mail or alerts staff (docs/ARCHITECTURE.md, "Status changes and their effects").

Handlers enqueue Celery tasks by their registered name (`task_enqueue`) because tasks sit
above services in the layering; the task modules are imported when the orders app is ready.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from celery import current_app
from django.db import transaction

from orders import alerts, customer_mail
from orders.models import AITokenOrder, OrderReason, OrderStatus

logger = logging.getLogger("orders.transition_effects")

S = OrderStatus

# Celery task names the effects and services enqueue (defined in orders/tasks/).
ORDER_FULFIL_TASK = "orders.tasks.order_fulfil"
KEY_USAGE_REFRESH_TASK = "orders.tasks.key_usage_refresh"


@dataclass(frozen=True)
class StatusChange:
    """One committed status change, as handlers see it."""

    order_pk: int
    order_id: str
    from_status: str
    to_status: str
    source: str
    reason: str = ""


Handler = Callable[[StatusChange], None]


@dataclass(frozen=True)
class _Registration:
    handler: Handler
    from_statuses: frozenset[str] | None


_HANDLERS: dict[str, list[_Registration]] = defaultdict(list)


def on_enter(to_status: str, *, from_statuses: Iterable[str] | None = None) -> Callable[[Handler], Handler]:
    """Register `handler(change)` to run on commit whenever an order enters `to_status`.

    `from_statuses` narrows it to changes coming from those statuses (e.g. only `pending → paid`
    is a customer's payment; `failed → paid` is a staff retry).
    """

    def register(handler: Handler) -> Handler:
        allowed = frozenset(from_statuses) if from_statuses is not None else None
        _HANDLERS[to_status].append(_Registration(handler, allowed))
        return handler

    return register


def transition_effects_schedule(*, change: StatusChange) -> None:
    """Queue every handler registered for this change to run when the transaction commits."""
    for registration in _HANDLERS.get(change.to_status, ()):
        if registration.from_statuses is None or change.from_status in registration.from_statuses:
            transaction.on_commit(partial(registration.handler, change))


def task_enqueue(name: str, *args: object, **kwargs: object) -> None:
    """Queue a Celery task by its registered name (services and effects never import tasks)."""
    current_app.tasks[name].delay(*args, **kwargs)


# --- The effects -----------------------------------------------------------------------------


@on_enter(S.PAID)
def _enqueue_fulfilment(change: StatusChange) -> None:
    """Entering `paid` (by payment, staff approval, staff retry or a reconciler reset) buys the key."""
    task_enqueue(ORDER_FULFIL_TASK, change.order_pk)


def _mail_the_customer(change: StatusChange) -> None:
    """The customer hears of every state they care about; `orders.customer_mail` says which mail."""
    customer_mail.customer_mail_after_transition(
        order_pk=change.order_pk, from_status=change.from_status, to_status=change.to_status
    )


for _status in sorted({to_status for _, to_status in customer_mail.MAIL_AFTER_TRANSITION}):
    on_enter(_status)(_mail_the_customer)


@on_enter(S.NEEDS_REVIEW)
def _alert_needs_review(change: StatusChange) -> None:
    order = AITokenOrder.objects.filter(pk=change.order_pk).only("total_usd_cost", "crypto_type").first()
    if order is None:
        return
    reason_label = OrderReason(change.reason).label if change.reason in OrderReason.values else change.reason
    alerts.alert_staff(
        kind=f"needs_review:{change.reason}",
        subject=f"Order {change.order_id} needs review",
        body=(
            f"Order {change.order_id} was paid but cannot be fulfilled automatically.\n"
            f"Reason: {reason_label} ({change.reason}).\n"
            f"Total: {order.total_usd_cost} USD in {order.crypto_type}.\n"
            "Review it in the admin: the order's events hold the gateway's record."
        ),
    )


__all__ = [
    "KEY_USAGE_REFRESH_TASK",
    "ORDER_FULFIL_TASK",
    "StatusChange",
    "on_enter",
    "task_enqueue",
    "transition_effects_schedule",
]
