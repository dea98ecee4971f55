"""Staff operations tasks."""

from __future__ import annotations

from celery import shared_task

from orders.alerts import alerts_watchdog

__all__ = ["staff_watchdog"]


@shared_task(name="orders.tasks.staff_watchdog", ignore_result=True, soft_time_limit=50, time_limit=60)
def staff_watchdog() -> None:
    """Every minute: refresh the cached OpenRouter capacity and alert staff about what is wrong."""
    alerts_watchdog()
