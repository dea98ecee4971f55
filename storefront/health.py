"""`/healthz`: is this deployment able to take and fulfil orders right now?

Each check answers ok / not ok with a few numbers; the response is 200 when all pass, 503 when
any fails (load balancers and uptime monitors only look at the code). Nothing secret is ever in
the body: errors are reported by exception class only, never by message (a broker error can
quote its URL, password included).

Heartbeats: the payment poller and the catalogue sync record their last success in the cache
(`storefront.heartbeats`); the checks below read their age.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Max
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_celery_beat.models import PeriodicTask
from kombu import Connection

from storefront.beat import BEAT_HEARTBEAT_KEY
from storefront.heartbeats import LAST_POLL_OK_KEY, LAST_SYNC_OK_KEY, heartbeat_age

logger = logging.getLogger("storefront.health")

def check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True}


def check_cache() -> dict[str, Any]:
    key, token = "health:probe", uuid.uuid4().hex
    cache.set(key, token, timeout=30)
    return {"ok": cache.get(key) == token}


def check_broker() -> dict[str, Any]:
    """Open (and close) a connection to the Celery broker with a short timeout."""
    timeout = settings.HEALTH_BROKER_TIMEOUT_SECONDS
    with Connection(
        settings.CELERY_BROKER_URL,
        connect_timeout=timeout,
        transport_options=getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
    ) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    return {"ok": True}


def check_heartbeat(key: str, max_age: int) -> dict[str, Any]:
    age = heartbeat_age(key)
    return {
        "ok": age is not None and age <= max_age,
        "age_seconds": None if age is None else int(age),
        "max_age_seconds": max_age,
    }


def check_beat() -> dict[str, Any]:
    """Beat's own heartbeat (storefront/beat.py, stamped every few seconds) when it has one.

    Without one (a beat on another scheduler), django-celery-beat's `last_run_at`, which it
    writes only every few minutes.
    """


    age = heartbeat_age(BEAT_HEARTBEAT_KEY)
    if age is not None:
        max_age = settings.HEALTH_BEAT_HEARTBEAT_MAX_AGE_SECONDS
        return {"ok": age <= max_age, "age_seconds": int(age), "max_age_seconds": max_age}

    last = PeriodicTask.objects.filter(enabled=True).aggregate(last=Max("last_run_at"))["last"]
    max_age = settings.HEALTH_BEAT_MAX_AGE_SECONDS
    if last is None:
        return {"ok": False, "age_seconds": None, "max_age_seconds": max_age}
    age = max(0, int(time.time() - last.timestamp()))
    return {"ok": age <= max_age, "age_seconds": age, "max_age_seconds": max_age}


def health_report() -> dict[str, Any]:
    """Run every check; one failing (or raising) check never hides the others."""
    checks = {
        "database": check_database,
        "cache": check_cache,
        "broker": check_broker,
        "payment_poll": lambda: check_heartbeat(LAST_POLL_OK_KEY, settings.HEALTH_POLL_MAX_AGE_SECONDS),
        "catalogue_sync": lambda: check_heartbeat(LAST_SYNC_OK_KEY, settings.HEALTH_SYNC_MAX_AGE_SECONDS),
        "beat": check_beat,
    }
    results: dict[str, Any] = {}
    for name, check in checks.items():
        started = time.monotonic()
        try:
            result = check()
        except Exception as exc:
            # Class name only: messages can carry URLs with credentials.
            result = {"ok": False, "error": type(exc).__name__}
        result["ms"] = round((time.monotonic() - started) * 1000)
        results[name] = result
    healthy = all(r["ok"] for r in results.values())
    if not healthy:
        failing = ",".join(name for name, r in results.items() if not r["ok"])
        logger.warning("healthz status=fail failing=%s", failing)
    return {"status": "ok" if healthy else "fail", "checks": results}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """200 with every check when healthy, 503 otherwise (same body)."""
    report = health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
