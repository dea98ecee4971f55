"""Install the periodic tasks defined in `settings.PERIODIC_TASKS` into django-celery-beat.

Idempotent: a task that exists keeps the interval and enabled flag staff gave it in the admin
(unless `reset=True`); only missing tasks are created and task paths are kept in sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask


@dataclass
class InstallReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _interval_for(seconds: int) -> IntervalSchedule:
    schedule, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
    return schedule


def schedules_install(*, reset: bool = False) -> InstallReport:
    """Create (or, with reset, restore) every periodic task the store defines in code."""
    report = InstallReport()
    with transaction.atomic():
        existing = {task.name: task for task in PeriodicTask.objects.filter(name__in=settings.PERIODIC_TASKS)}
        for name, spec in settings.PERIODIC_TASKS.items():
            seconds = int(spec["every"].total_seconds())
            task = existing.get(name)
            if task is None:
                PeriodicTask.objects.create(name=name, task=spec["task"], interval=_interval_for(seconds))
                report.created.append(name)
                continue
            changed = []
            if task.task != spec["task"]:
                task.task = spec["task"]
                changed.append("task")
            if reset and (task.interval is None or task.interval.every != seconds or not task.enabled):
                task.interval = _interval_for(seconds)
                task.crontab = None
                task.enabled = True
                changed += ["interval", "crontab", "enabled"]
            if changed:
                task.save()
                report.updated.append(name)
            else:
                report.unchanged.append(name)
    return report
