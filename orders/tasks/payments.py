"""Payment tasks: the beat-driven poller (every `PAYMENT_POLL_INTERVAL_SECONDS`)."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from orders.services import polling

__all__ = ["payments_poll"]


@shared_task(name="orders.tasks.payments_poll", ignore_result=True, acks_late=False)
def payments_poll() -> dict:
    """Check every due order's payment once. Overlapping runs split the work (leases)."""
    return asdict(polling.payments_poll())
