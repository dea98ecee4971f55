"""/healthz: every check reported, 200 only when all pass, 503 otherwise, never a secret."""

from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from storefront import health
from storefront.heartbeats import LAST_POLL_OK_KEY, LAST_SYNC_OK_KEY, record_poll_ok, record_sync_ok

pytestmark = pytest.mark.django_db
CHECKS = {"database", "cache", "broker", "payment_poll", "catalogue_sync", "beat"}


def beat_ran(seconds_ago: int, *, enabled: bool = True) -> PeriodicTask:
    every, _ = IntervalSchedule.objects.get_or_create(every=30, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(
        name=f"task {seconds_ago} {enabled}", task="orders.tasks.poll_payments", interval=every, enabled=enabled,
        last_run_at=timezone.now() - timedelta(seconds=seconds_ago),
    )


@pytest.fixture
def all_fresh(settings):
    settings.HEALTH_POLL_MAX_AGE_SECONDS = 300
    settings.HEALTH_SYNC_MAX_AGE_SECONDS = 3600
    settings.HEALTH_BEAT_MAX_AGE_SECONDS = 600
    record_poll_ok()
    record_sync_ok()
    beat_ran(10)


def test_healthy_deployment_answers_200_with_every_check(client, all_fresh):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == CHECKS
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["payment_poll"]["age_seconds"] <= 1
    assert response["Cache-Control"].startswith("max-age=0")


def test_stale_payment_poll_answers_503(client, all_fresh):
    # given: the last successful poll was 301 s ago (limit 300)
    record_poll_ok(at=time.time() - 301)
    # when
    response = client.get("/healthz")
    # then
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    poll = body["checks"]["payment_poll"]
    assert poll["ok"] is False and poll["max_age_seconds"] == 300
    assert 301 <= poll["age_seconds"] <= 303
    assert all(body["checks"][name]["ok"] for name in CHECKS - {"payment_poll"})


def test_poll_just_within_the_limit_is_fine(client, all_fresh):
    record_poll_ok(at=time.time() - 290)
    assert client.get("/healthz").status_code == 200


def test_never_synced_catalogue_answers_503(client, all_fresh):
    from django.core.cache import cache

    cache.delete(LAST_SYNC_OK_KEY)
    body = client.get("/healthz").json()
    assert body["checks"]["catalogue_sync"]["ok"] is False
    assert body["checks"]["catalogue_sync"]["age_seconds"] is None


def test_garbage_heartbeat_counts_as_missing(client, all_fresh):
    from django.core.cache import cache

    cache.set(LAST_POLL_OK_KEY, "not a time", None)
    assert client.get("/healthz").json()["checks"]["payment_poll"]["ok"] is False


def test_beat_not_running_answers_503(client, all_fresh):
    PeriodicTask.objects.all().delete()
    beat_ran(601)
    beat_ran(5, enabled=False)  # a disabled task's recent run proves nothing
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["beat"]["ok"] is False


def test_beat_never_ran(client, all_fresh):
    PeriodicTask.objects.update(last_run_at=None)
    assert client.get("/healthz").json()["checks"]["beat"] == {
        "ok": False, "age_seconds": None, "max_age_seconds": 600, "ms": mock.ANY,
    }


def test_unreachable_broker_fails_fast_without_leaking_its_url(client, all_fresh, settings):
    settings.CELERY_BROKER_URL = "redis://:broker-password-123@127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    settings.HEALTH_BROKER_TIMEOUT_SECONDS = 1
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    broker = response.json()["checks"]["broker"]
    assert broker["ok"] is False and broker["error"]
    assert "broker-password-123" not in response.content.decode()
    assert "127.0.0.1" not in response.content.decode()


def test_a_raising_check_is_reported_by_class_name_only(client, all_fresh):
    with mock.patch.object(health, "check_database", side_effect=RuntimeError("password=hunter2 at db.internal")):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {"ok": False, "error": "RuntimeError", "ms": mock.ANY}
    assert "hunter2" not in response.content.decode()
    assert response.json()["checks"]["cache"]["ok"] is True  # the others still ran


def test_cache_that_loses_writes_fails(client, all_fresh):
    with mock.patch.object(health.cache, "get", return_value=None):
        body = client.get("/healthz").json()
    assert body["checks"]["cache"]["ok"] is False


def test_body_holds_no_secrets(client, all_fresh, settings):
    text = client.get("/healthz").content.decode()
    for secret in (settings.SECRET_KEY, settings.OPENROUTER_API_KEY, settings.KRYPTO_EXPRESS_API_KEY,
                   *settings.FIELD_ENCRYPTION_KEYS):
        assert secret not in text


def test_only_get_and_head(client, all_fresh):
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


def test_not_redirected_to_https_so_load_balancers_can_probe(client, all_fresh, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 301  # everything else is redirected


# --- Beat's own heartbeat (right within seconds of start) --------------------------------------


def test_a_fresh_beat_is_healthy_before_it_ever_wrote_last_run_at(client, settings):
    # given a fresh install: schedules exist, beat never synced last_run_at, but beat's loop ticked
    from storefront.beat import record_beat_alive

    every, _ = IntervalSchedule.objects.get_or_create(every=30, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="poll", task="orders.tasks.poll_payments", interval=every)
    record_poll_ok()
    record_sync_ok()
    record_beat_alive()
    # when / then
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["beat"]["age_seconds"] <= 1


def test_a_stale_beat_heartbeat_fails_even_with_a_recent_last_run_at(client, all_fresh, settings):
    from storefront.beat import record_beat_alive

    settings.HEALTH_BEAT_HEARTBEAT_MAX_AGE_SECONDS = 60
    record_beat_alive(at=time.time() - 61)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["beat"]["ok"] is False


def test_the_scheduler_stamps_the_heartbeat_on_its_tick(settings):
    from storefront.beat import BEAT_HEARTBEAT_KEY, HeartbeatScheduler
    from storefront.celery import app

    assert settings.CELERY_BEAT_SCHEDULER == "storefront.beat:HeartbeatScheduler"
    scheduler = HeartbeatScheduler(app=app, lazy=True)
    with mock.patch("django_celery_beat.schedulers.DatabaseScheduler.tick", return_value=5.0):
        assert scheduler.tick() == 5.0
    assert health.heartbeat_age(BEAT_HEARTBEAT_KEY) <= 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
@pytest.mark.live
def test_a_real_beat_process_is_healthy_within_60_seconds_of_start(live_server, settings):
    from tests.conftest import ON_POSTGRES
    from tests.worker_process import WorkerProcess

    if not (ON_POSTGRES and settings.REDIS_URL):
        pytest.skip("a beat process needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    from storefront.schedules import schedules_install

    schedules_install()
    beat = WorkerProcess(live_url=live_server.url, command=["beat", "-l", "INFO", "-s", "/dev/null"])
    started = time.monotonic()
    try:
        while not health.check_beat()["ok"]:
            assert beat.proc.poll() is None, "\n".join(beat.lines[-30:])
            assert time.monotonic() - started < 60, "\n".join(beat.lines[-30:])
            time.sleep(0.5)
    finally:
        beat.stop()
    assert time.monotonic() - started < 60
