"""Metrics dashboard benchmark: 100,000 orders on PostgreSQL, target < 300 ms per page.

Run with `make bench` or
`RUN_BENCH=1 DATABASE_URL=postgres://... pytest tests/bench/bench_metrics.py -s -p no:xdist`.
Prints the median / worst of 7 renders (after a warm-up) for each period, and the query count.
"""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders.metrics import metrics_for_period
from tests.bench.staff_dataset import DATASET_SIZE, STAFF_BENCH_MARKS, TARGET_MS, load_orders, timed

pytestmark = STAFF_BENCH_MARKS


def test_metrics_page_renders_under_300_ms_with_100k_orders(staff_client):
    load_orders(DATASET_SIZE)
    url = reverse("orders:staff_metrics")
    results = {}
    for days in (7, 30, 90):
        with CaptureQueriesContext(connection) as ctx:
            response = staff_client.get(url, {"days": days})
        queries = len(ctx.captured_queries)  # read now: the next request resets the query log
        assert response.status_code == 200
        page = timed(lambda d=days: staff_client.get(url, {"days": d}))
        figures = timed(lambda d=days: metrics_for_period(days=d))
        results[days] = {"page": page, "figures_only": figures, "queries": queries}
    m = metrics_for_period(days=90)
    print(f"\nmetrics dashboard, {DATASET_SIZE:,} orders on PostgreSQL ({m.placed:,} placed in the last 90 days):")
    for days, r in results.items():
        print(f"  {days:>2} days: page median {r['page']['median_ms']} ms (max {r['page']['max_ms']} ms), "
              f"figures {r['figures_only']['median_ms']} ms, {r['queries']} queries")
    for days, r in results.items():
        assert r["page"]["median_ms"] < TARGET_MS, (days, r)
        assert r["queries"] <= 12
