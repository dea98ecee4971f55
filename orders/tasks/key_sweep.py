"""The targeted orphan-key sweep (see orders/services/key_sweep.py): load by id, sweep, re-check."""

from __future__ import annotations

from celery import shared_task

from orders.services import key_sweep
from orders.services.key_sweep import BUSY_RECHECK_SECONDS, MAX_BUSY_RECHECKS, ORDER_KEYS_SWEEP_TASK

__all__ = ["order_keys_sweep"]


@shared_task(bind=True, name=ORDER_KEYS_SWEEP_TASK, acks_late=True, soft_time_limit=60, time_limit=90,
             max_retries=MAX_BUSY_RECHECKS)
def order_keys_sweep(self, order_pk: int) -> dict:
    """Delete the order's keys it does not hold; while an attempt holds its claim, look again soon."""
    report = key_sweep.order_keys_sweep(order_pk=int(order_pk))
    if (report.busy or report.error) and not self.request.is_eager:  # an inline run cannot wait
        raise self.retry(countdown=BUSY_RECHECK_SECONDS)
    return {"deleted": len(report.deleted)}
