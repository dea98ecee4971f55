"""Order admin benchmark: list and detail pages with 100,000 orders on PostgreSQL.

Run with `make bench` or
`RUN_BENCH=1 DATABASE_URL=postgres://... pytest tests/bench/bench_admin.py -s -p no:xdist`.
Query counts must equal the small-table counts (constant), and every page should answer fast
(no full-table COUNT, no DISTINCT over orders, indexed filters and search).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.bench.staff_dataset import load_orders, timed
from tests.conftest import needs_postgres

pytestmark = [
    pytest.mark.bench,
    pytest.mark.skipif(os.environ.get("RUN_BENCH") != "1", reason="benchmark: set RUN_BENCH=1 (make bench)"),
    needs_postgres,
    # Committed rows so the loader can VACUUM ANALYZE: the table as autovacuum keeps it in production.
    pytest.mark.django_db(transaction=True),
]
N = int(os.environ.get("BENCH_ORDERS", "100000"))
TARGET_MS = 300


def test_admin_changelist_and_detail_with_100k_orders(staff_client):
    data = load_orders(N)
    sample = data["sample"]
    changelist = reverse("admin:orders_aitokenorder_changelist")
    week_ago = (timezone.now() - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    pages = {
        "list (unfiltered)": (changelist, {}),
        "list, a deep page": (changelist, {"p": str(min(500, N // 50 - 1))}),
        "status=failed": (changelist, {"status__exact": "failed"}),
        "reason=wrong_amount": (changelist, {"reason__exact": "wrong_amount"}),
        "crypto=USDT_TRC20": (changelist, {"crypto": "USDT_TRC20"}),
        "model=openai/gpt-4o": (changelist, {"model": "openai/gpt-4o"}),
        "created in the last 7 days": (changelist, {"created_at__gte": str(week_ago)}),
        "search order id": (changelist, {"q": sample.order_id}),
        "search email": (changelist, {"q": sample.user.email}),
        "search payment hash": (changelist, {"q": sample.payment_hash}),
        "search key hash": (changelist, {"q": sample.key_hash}),
        "order detail": (reverse("admin:orders_aitokenorder_change", args=[sample.pk]), {}),
    }
    results = {}
    for name, (url, params) in pages.items():
        with CaptureQueriesContext(connection) as ctx:
            response = staff_client.get(url, params)
        queries = len(ctx.captured_queries)  # read now: the next request resets the query log
        assert response.status_code == 200, name
        results[name] = {**timed(lambda u=url, p=params: staff_client.get(u, p)), "queries": queries}
    print(f"\norder admin, {N:,} orders on PostgreSQL:")
    for name, r in results.items():
        print(f"  {name:<26} median {r['median_ms']:>6} ms (max {r['max_ms']:>6} ms), {r['queries']} queries")
    list_counts = {r["queries"] for name, r in results.items() if name != "order detail" and "search email" != name}
    assert max(list_counts) <= 8
    for name, r in results.items():
        assert r["median_ms"] < TARGET_MS, (name, r)
