"""Fulfilment tasks: thin — load by id, call one service, schedule the retry.

`order_fulfil` is idempotent (the service claims the order with a conditional UPDATE), so it
runs with `acks_late` + `reject_on_worker_lost`: a worker that dies mid-task gets the message
redelivered instead of losing it. Its time limits sit far below the broker's visibility timeout
and below FULFIL_STUCK_AFTER_SECONDS, so a claim the reconciler resets is never still running.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import MaxRetriesExceededError
from django.conf import settings

from orders.services import fulfilment, key_usage, reconciler
from orders.services.fulfil_queue import fulfilment_clear_enqueued, fulfilment_mark_enqueued
from orders.transition_effects import KEY_USAGE_REFRESH_TASK, ORDER_FULFIL_TASK

logger = logging.getLogger("orders.tasks")

__all__ = ["fulfilment_reconcile", "key_usage_refresh", "order_fulfil"]

FULFIL_SOFT_TIME_LIMIT = 60
FULFIL_TIME_LIMIT = 90


@shared_task(
    bind=True,
    name=ORDER_FULFIL_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=FULFIL_SOFT_TIME_LIMIT,
    time_limit=FULFIL_TIME_LIMIT,
    max_retries=None,
)
def order_fulfil(self, order_pk: int) -> str:
    """Buy and deliver one paid order's key (see `orders.services.fulfilment.order_fulfil`)."""
    outcome = fulfilment.order_fulfil(order_pk=int(order_pk))
    if outcome.result is fulfilment.FulfilResult.LEASED and outcome.retry_in is not None and not self.request.is_eager:
        # Redelivered while an attempt holds a live lease (or a duplicate): look again when it
        # lapses; if the attempt died with its worker, this task takes the order over then.
        raise self.retry(countdown=outcome.retry_in, max_retries=None)
    if outcome.result is not fulfilment.FulfilResult.RETRY or outcome.retry_in is None:
        fulfilment_clear_enqueued(outcome.order_pk)
    else:
        fulfilment_mark_enqueued(outcome.order_pk, countdown=outcome.retry_in)
        try:
            raise self.retry(countdown=outcome.retry_in, max_retries=settings.FULFIL_MAX_ATTEMPTS)
        except MaxRetriesExceededError:
            # The attempt counter on the order is the real bound; the reconciler picks it up.
            logger.warning("order_fulfil order_pk=%s: task retries exhausted; left to the reconciler", order_pk)
    return outcome.result.value


@shared_task(name="orders.tasks.fulfilment_reconcile", acks_late=True, soft_time_limit=240, time_limit=280)
def fulfilment_reconcile() -> dict:
    """Beat, every minute: reset lapsed claims, re-enqueue forgotten orders, disable stray keys."""
    report = reconciler.fulfilment_reconcile()
    return {
        "reset": len(report.reset),
        "requeued": len(report.requeued),
        "disabled_keys": len(report.disabled_keys),
        "unknown_keys": len(report.unknown_keys),
        "errors": len(report.errors),
    }


@shared_task(name=KEY_USAGE_REFRESH_TASK, acks_late=True, soft_time_limit=120, time_limit=150)
def key_usage_refresh(order_pk: int | None = None) -> dict:
    """Beat, every 10 minutes (all keys, one listing); or one order's key for its usage fragment."""
    report = key_usage.key_usage_refresh(order_pk=int(order_pk) if order_pk is not None else None)
    return {"updated": report.updated, "missing": len(report.missing), "error": report.error}
