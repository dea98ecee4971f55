"""Celery tasks of the payments adapter (thin: they call one function)."""

from __future__ import annotations

import logging

from celery import shared_task

from payments import rates
from payments.client import KryptoExpressError

logger = logging.getLogger("payments.tasks")


@shared_task(name="payments.tasks.refresh_rates", ignore_result=True, soft_time_limit=30, time_limit=45)
def refresh_rates() -> dict[str, str]:
    """Beat (every 45 s): refresh the cached crypto rates so pages can preview amounts offline.

    A failed refresh is logged and dropped: the next beat tick is the retry.
    """
    try:
        fresh = rates.refresh_rates()
    except KryptoExpressError as exc:
        logger.warning("rate refresh failed: %s (status %s)", type(exc).__name__, exc.status_code)
        return {}
    return {code: str(rate) for code, rate in fresh.items()}
