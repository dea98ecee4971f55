"""Queue bookkeeping for fulfilment: which orders have a fulfil task in flight.

A fulfil task marks its order in the cache while it is queued or scheduled for a retry, so the
reconciler (`orders.services.reconciler`) re-enqueues only the `paid` orders nothing is working
on. The mark is a hint, never a lock: the claim in `order_fulfil` is what makes a purchase
happen once.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

from orders.transition_effects import ORDER_FULFIL_TASK, task_enqueue


def _inflight_key(order_pk: int) -> str:
    return f"fulfil-enqueued:{order_pk}"


def fulfilment_mark_enqueued(order_pk: int, *, countdown: float = 0) -> None:
    """Remember that a fulfil task for this order is queued, so the reconciler leaves it alone."""
    cache.set(_inflight_key(order_pk), 1, timeout=int(countdown) + int(settings.FULFIL_REQUEUE_AFTER_SECONDS) * 3)


def fulfilment_clear_enqueued(order_pk: int) -> None:
    """The queued task has run and scheduled nothing further: the order has nothing in flight."""
    cache.delete(_inflight_key(order_pk))


def fulfilment_enqueue(order_pk: int) -> None:
    """Queue a fulfil task for this order and remember that it is queued."""
    fulfilment_mark_enqueued(order_pk)
    task_enqueue(ORDER_FULFIL_TASK, order_pk)


def fulfilment_queued(order_pks: list[int]) -> set[int]:
    """Which of these orders have a fulfil task queued (one cache round trip)."""
    if not order_pks:
        return set()
    marks = cache.get_many([_inflight_key(pk) for pk in order_pks])
    return {pk for pk in order_pks if _inflight_key(pk) in marks}


__all__ = ["fulfilment_clear_enqueued", "fulfilment_enqueue", "fulfilment_mark_enqueued", "fulfilment_queued"]
