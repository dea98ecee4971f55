"""Celery tasks for orders: thin wrappers that load by id and call a service."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger("orders.tasks")


@shared_task(acks_late=True, reject_on_worker_lost=True)
def fulfil_order(order_pk: int) -> None:
    """Placeholder until fulfilment lands: records that it ran."""
    logger.info("fulfil_order order_pk=%s", order_pk)
