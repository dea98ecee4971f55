"""Staff operations tasks."""

from __future__ import annotations

from celery import shared_task

from orders.services import watchdog

__all__ = ["alerts_watchdog"]


@shared_task(name="orders.tasks.alerts_watchdog", ignore_result=True, soft_time_limit=50, time_limit=60)
def alerts_watchdog() -> None:
    """Every minute: refresh the cached OpenRouter capacity and alert staff about what is wrong."""
    watchdog.alerts_watchdog()
