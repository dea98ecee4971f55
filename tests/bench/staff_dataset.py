"""100,000 realistic orders for the staff benchmarks, inserted with bulk_create (~15 s on PostgreSQL)."""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import User
from openrouter.models import AIModel
from orders.models import AITokenOrder, OrderReason, OrderStatus
from tests.bench.marks import BENCH_MARKS
from tests.conftest import needs_postgres

STAFF_BENCH_MARKS = [
    *BENCH_MARKS,
    needs_postgres,
    # Committed rows so the loader can VACUUM ANALYZE: the table as autovacuum keeps it in production.
    pytest.mark.django_db(transaction=True),
]
DATASET_SIZE = int(os.environ.get("BENCH_ORDERS", "100000"))
TARGET_MS = 300  # what a staff page may take, median, on the full dataset

S = OrderStatus
MODELS = ["anthropic/claude-3-sonnet", "openai/gpt-4o", "google/gemini-pro", "meta/llama-3-70b", "mistral/large"]
STATUS_WEIGHTS = [
    (S.DELIVERED, 70), (S.EXPIRED, 10), (S.PENDING, 4), (S.FAILED, 3), (S.NEEDS_REVIEW, 3),
    (S.REFUNDED, 2), (S.PAID, 4), (S.FULFILLING, 4),
]
REASONS = {S.FAILED: OrderReason.RETRIES_EXHAUSTED, S.NEEDS_REVIEW: OrderReason.WRONG_AMOUNT}


def load_orders(n: int = 100_000, *, users: int = 2_000, days: int = 120, seed: int = 5) -> dict:
    """Insert `n` orders spread over the last `days` days; returns a few handy identifiers."""
    rng = random.Random(seed)
    now = timezone.now()
    for model_id in MODELS:
        AIModel.objects.get_or_create(id=model_id, defaults={"name": model_id, "offered": True,
                                                             "prompt_price": Decimal("0.000003"),
                                                             "completion_price": Decimal("0.000015")})
    people = User.objects.bulk_create(
        [User(email=f"bench{i}@example.com", password="!") for i in range(users)], batch_size=2000
    )
    statuses = [s for s, w in STATUS_WEIGHTS for _ in range(w)]
    created_field = AITokenOrder._meta.get_field("created_at")
    created_field.auto_now_add = False  # keep our spread-out creation times (restored below)
    try:
        _insert(n, rng=rng, now=now, days=days, people=people, statuses=statuses)
    finally:
        created_field.auto_now_add = True
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            cursor.execute("ANALYZE orders_aitokenorder")
        else:  # committed data (transactional test): the steady state autovacuum would leave
            cursor.execute("VACUUM ANALYZE orders_aitokenorder")
        cursor.execute("ANALYZE accounts_user")
    sample = AITokenOrder.objects.filter(status=S.DELIVERED).select_related("user").order_by("id").first()
    return {"sample": sample}


def _insert(n: int, *, rng: random.Random, now, days: int, people: list, statuses: list) -> None:
    batch: list[AITokenOrder] = []
    for i in range(n):
        status = rng.choice(statuses)
        created = now - timedelta(seconds=rng.randint(0, days * 86400))
        tokens = rng.choice([1_000, 5_000, 10_000, 20_000, 200_000, 1_000_000])
        base = (Decimal(tokens) * Decimal("0.000009")).quantize(Decimal("0.01")) + Decimal("1.00")
        base = min(base, Decimal("16.66"))
        markup = (base * Decimal("0.20")).quantize(Decimal("0.01"))
        paid_at = created + timedelta(minutes=rng.randint(1, 30)) if status not in (S.PENDING, S.EXPIRED) else None
        delivered_at = paid_at + timedelta(seconds=rng.randint(3, 900)) if status == S.DELIVERED else None
        batch.append(AITokenOrder(
            order_id=f"TS-bench{i:010d}", user=people[i % len(people)], token_count=tokens, model_id=MODELS[i % 5],
            prompt_price=Decimal("0.000003"), completion_price=Decimal("0.000015"),
            price_per_token=Decimal("0.000009"), markup_rate=Decimal("0.20"), base_usd_cost=base,
            markup_amount=markup, total_usd_cost=base + markup,
            crypto_type="BTC" if i % 3 else "USDT_TRC20", crypto_amount=Decimal("0.0001"),
            payment_id=str(i), payment_hash=f"{i:064x}", address=f"bc1qbench{i:030d}",
            created_at=created, expires_at=created + timedelta(hours=2), paid_at=paid_at, status=status,
            reason=REASONS.get(status, ""), delivered_at=delivered_at,
            key_hash=f"k{i:063x}" if status == S.DELIVERED else None,
            key_usage_usd=Decimal("0.10") if status == S.DELIVERED else None,
        ))
        if len(batch) == 5000:
            AITokenOrder.objects.bulk_create(batch)
            batch = []
    if batch:
        AITokenOrder.objects.bulk_create(batch)


def timed(fn: Callable[[], object], *, runs: int = 7) -> dict:
    """Median and worst wall time in ms over `runs` calls (after one warm-up call)."""
    fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1)}
