"""Fulfilment tasks. (Placeholder until the fulfilment work lands.)"""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger("orders.tasks")

__all__ = ["fulfil_order"]


@shared_task(name="orders.tasks.fulfil_order", acks_late=True, reject_on_worker_lost=True)
def fulfil_order(order_pk: int) -> None:
    logger.info("fulfil_order order_pk=%s (placeholder)", order_pk)
