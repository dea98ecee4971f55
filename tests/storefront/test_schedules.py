from datetime import timedelta

import pytest
from django_celery_beat.models import PeriodicTask

from storefront.schedules import schedules_install

pytestmark = pytest.mark.django_db


def test_install_creates_every_periodic_task_defined_in_code(settings):
    # when
    report = schedules_install()
    # then
    assert sorted(report.created) == sorted(settings.PERIODIC_TASKS)
    for name, spec in settings.PERIODIC_TASKS.items():
        task = PeriodicTask.objects.get(name=name)
        assert task.task == spec["task"]
        assert task.interval.every == int(spec["every"].total_seconds())
        assert task.enabled


def test_install_is_idempotent_and_keeps_staff_tuning(settings):
    # given: installed, then staff slow the poller down and disable the sync
    schedules_install()
    poll = PeriodicTask.objects.get(name="Poll pending payments")
    poll.interval.every = 120
    poll.interval.save()
    PeriodicTask.objects.filter(name="Sync OpenRouter catalogue").update(enabled=False)
    # when
    report = schedules_install()
    # then
    assert report.created == []
    assert PeriodicTask.objects.filter(name__in=settings.PERIODIC_TASKS).count() == len(settings.PERIODIC_TASKS)
    assert PeriodicTask.objects.get(name="Poll pending payments").interval.every == 120
    assert PeriodicTask.objects.get(name="Sync OpenRouter catalogue").enabled is False


def test_install_with_reset_restores_the_defaults(settings):
    schedules_install()
    PeriodicTask.objects.filter(name="Sync OpenRouter catalogue").update(enabled=False)
    settings.PERIODIC_TASKS = {
        **settings.PERIODIC_TASKS,
        "Sync OpenRouter catalogue": {"task": "openrouter.tasks.sync_catalogue", "every": timedelta(minutes=30)},
    }
    report = schedules_install(reset=True)
    task = PeriodicTask.objects.get(name="Sync OpenRouter catalogue")
    assert "Sync OpenRouter catalogue" in report.updated
    assert task.enabled is True
    assert task.interval.every == 1800
