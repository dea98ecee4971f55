"""Order admin benchmark: list and detail pages with 100,000 orders on PostgreSQL.

Run with `make bench` or
`RUN_BENCH=1 DATABASE_URL=postgres://... pytest tests/bench/bench_admin.py -s -p no:xdist`.
Query counts must equal the small-table counts (constant), and every page should answer fast
(no full-table COUNT, no DISTINCT over orders, indexed filters and search).
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.bench.staff_dataset import DATASET_SIZE, STAFF_BENCH_MARKS, TARGET_MS, load_orders, timed

pytestmark = STAFF_BENCH_MARKS


def test_admin_changelist_and_detail_with_100k_orders(staff_client):
    data = load_orders(DATASET_SIZE)
    sample = data["sample"]
    changelist = reverse("admin:orders_aitokenorder_changelist")
    week_ago = (timezone.now() - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    pages = {
        "list (unfiltered)": (changelist, {}),
        "list, a deep page": (changelist, {"p": str(min(500, DATASET_SIZE // 50 - 1))}),
        "status=failed": (changelist, {"status__exact": "failed"}),
        "reason=wrong_amount": (changelist, {"reason__exact": "wrong_amount"}),
        "crypto=USDT_TRC20": (changelist, {"crypto": "USDT_TRC20"}),
        "model=openai/gpt-4o": (changelist, {"model": "openai/gpt-4o"}),
        "refund offered by staff": (changelist, {"refund": "offered"}),
        "refund needs staff": (changelist, {"refund": "attention"}),
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
    print(f"\norder admin, {DATASET_SIZE:,} orders on PostgreSQL:")
    for name, r in results.items():
        print(f"  {name:<26} median {r['median_ms']:>6} ms (max {r['max_ms']:>6} ms), {r['queries']} queries")
    list_counts = {r["queries"] for name, r in results.items() if name != "order detail" and "search email" != name}
    assert max(list_counts) <= 8
    for name, r in results.items():
        assert r["median_ms"] < TARGET_MS, (name, r)
