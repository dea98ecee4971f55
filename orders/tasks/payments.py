"""Payment tasks: the beat-driven poller (every `PAYMENT_POLL_INTERVAL_SECONDS`)."""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import shared_task

from orders.services.polling import payments_poll

logger = logging.getLogger("orders.tasks")

__all__ = ["poll_payments"]


@shared_task(name="orders.tasks.poll_payments", ignore_result=True, acks_late=False)
def poll_payments() -> dict:
    """Check every due order's payment once. Overlapping runs split the work (leases)."""
    return asdict(payments_poll())
