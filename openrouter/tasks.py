"""Celery tasks of the OpenRouter adapter (autodiscovered as ``openrouter.tasks``)."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from openrouter.catalogue_sync import catalogue_sync


@shared_task(
    name="openrouter.tasks.sync_catalogue",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=120,
    time_limit=150,
)
def sync_catalogue() -> dict:
    """Beat, every 15 minutes: refresh model prices. Idempotent, so redelivery is harmless."""
    return asdict(catalogue_sync())
