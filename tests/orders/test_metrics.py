"""The metrics dashboard: figures against a hand-computed dataset, the chart, CSV export, access."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders.charts import daily_bar_chart, nice_ceiling
from orders.metrics import DayCount, metrics_for_period, parse_period, period_bounds
from orders.models import OrderStatus
from orders.services.capacity_cache import CAPACITY_CACHE_KEY, capacity_cached
from tests.factories import UserFactory
from tests.orders.staff_fixtures import make_order

pytestmark = pytest.mark.django_db
S = OrderStatus
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
SONNET, GPT = "anthropic/claude-3-sonnet", "openai/gpt-4o"


def at(day: int, hour: int = 10, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def dataset():
    """Twelve orders in the last 7 days (Mar 9–15), one just before, one six weeks before.

    Money: A = 1.80 + 0.36 = 2.16; B = 10.00 + 2.00 = 12.00; C = 5.00 + 1.00 = 6.00.
    """
    rows = [
        # status, money, model, crypto, created, payment → delivery seconds
        (S.DELIVERED, "A", SONNET, "BTC", at(15), 60),
        (S.DELIVERED, "B", SONNET, "BTC", at(14), 120),
        (S.DELIVERED, "C", GPT, "USDT_TRC20", at(14, 11), 30),
        (S.DELIVERED, "A", GPT, "USDT_TRC20", at(10), 600),
        (S.FAILED, "B", SONNET, "BTC", at(12), None),
        (S.PAID, "A", SONNET, "BTC", at(15, 9), None),
        (S.FULFILLING, "C", GPT, "BTC", at(15, 8), None),
        (S.EXPIRED, "A", SONNET, "BTC", at(11), None),
        (S.EXPIRED, "A", SONNET, "USDT_TRC20", at(11, 12), None),
        (S.NEEDS_REVIEW, "B", SONNET, "BTC", at(13), None),
        (S.PENDING, "A", SONNET, "BTC", at(15, 11), None),
        (S.REFUNDED, "C", GPT, "BTC", at(12, 15), None),
        # Outside the 7-day window by one second; inside 30 days.
        (S.DELIVERED, "B", SONNET, "BTC", at(8, 23, 59, 59), 90),
        # Inside 90 days only.
        (S.DELIVERED, "A", SONNET, "BTC", datetime(2026, 2, 1, tzinfo=UTC), 45),
    ]
    with time_machine.travel(NOW, tick=False):
        orders = [
            make_order(status=status, money=money, model_id=model, crypto_type=crypto, created_at=created,
                       delivery_seconds=seconds)
            for status, money, model, crypto, created, seconds in rows
        ]
    return orders


def test_seven_day_figures_match_the_hand_computed_values(dataset):
    # when
    m = metrics_for_period(days=7, now=NOW)
    # then: counts
    assert m.since == datetime(2026, 3, 9, tzinfo=UTC)
    assert (m.placed, m.paid, m.delivered) == (12, 7, 4)
    assert (m.pending, m.expired, m.needs_review, m.failed, m.refunded) == (1, 2, 1, 1, 1)
    # rates: 7/12 = 58.33 %, 4/7 = 57.14 %
    assert m.payment_success_rate == Decimal("58.3")
    assert m.delivery_success_rate == Decimal("57.1")
    # money over delivered orders: 2.16 + 12.00 + 6.00 + 2.16
    assert m.revenue == Decimal("22.32")
    assert m.markup == Decimal("3.72")
    assert m.openrouter_cost == Decimal("18.60")
    assert m.revenue_per_order == Decimal("1.86")  # 22.32 / 12
    assert m.average_order_value == Decimal("5.58")  # 22.32 / 4
    # delivery times 30, 60, 120, 600 s: nearest rank p50 → 2nd, p95 → 4th
    assert m.delivery_p50 == timedelta(seconds=60)
    assert m.delivery_p95 == timedelta(seconds=600)


def test_per_day_series_covers_every_day_including_empty_ones(dataset):
    m = metrics_for_period(days=7, now=NOW)
    assert [(d.day.day, d.placed, d.delivered) for d in m.per_day] == [
        (9, 0, 0), (10, 1, 1), (11, 2, 0), (12, 2, 0), (13, 1, 0), (14, 2, 2), (15, 4, 1),
    ]
    assert sum(d.placed for d in m.per_day) == m.placed


def test_orders_by_model_and_by_crypto(dataset):
    m = metrics_for_period(days=7, now=NOW)
    assert [(r.key, r.placed, r.delivered, r.revenue) for r in m.by_model] == [
        (SONNET, 8, 2, Decimal("14.16")),
        (GPT, 4, 2, Decimal("8.16")),
    ]
    assert [(r.key, r.placed, r.delivered, r.revenue) for r in m.by_crypto] == [
        ("BTC", 9, 2, Decimal("14.16")),
        ("USDT_TRC20", 3, 2, Decimal("8.16")),
    ]


def test_longer_periods_include_older_orders(dataset):
    m30 = metrics_for_period(days=30, now=NOW)
    assert (m30.placed, m30.paid, m30.delivered) == (13, 8, 5)
    assert m30.revenue == Decimal("34.32")
    assert m30.payment_success_rate == Decimal("61.5")  # 8 / 13
    assert m30.delivery_success_rate == Decimal("62.5")  # 5 / 8
    # 30, 60, 90, 120, 600 s: p50 → 3rd (90 s), p95 → 5th
    assert (m30.delivery_p50, m30.delivery_p95) == (timedelta(seconds=90), timedelta(seconds=600))
    assert len(m30.per_day) == 30
    m90 = metrics_for_period(days=90, now=NOW)
    assert (m90.placed, m90.delivered, m90.revenue) == (14, 6, Decimal("36.48"))


def test_empty_period_has_no_rates_instead_of_dividing_by_zero(db):
    m = metrics_for_period(days=7, now=NOW)
    assert m.placed == 0
    assert m.payment_success_rate is None and m.delivery_success_rate is None
    assert m.revenue_per_order is None and m.average_order_value is None
    assert m.delivery_p50 is None and m.delivery_p95 is None
    assert m.revenue == Decimal("0.00")
    assert len(m.per_day) == 7


def test_percentiles_use_nearest_rank_on_a_larger_set(db):
    # given: 20 delivered orders taking 1, 2, …, 20 minutes
    with time_machine.travel(NOW, tick=False):
        for minutes in range(1, 21):
            make_order(status=S.DELIVERED, created_at=at(14), delivery_seconds=minutes * 60)
    # when
    m = metrics_for_period(days=7, now=NOW)
    # then: p50 = ceil(0.5 × 20) = 10th, p95 = ceil(0.95 × 20) = 19th
    assert m.delivery_p50 == timedelta(minutes=10)
    assert m.delivery_p95 == timedelta(minutes=19)


def test_metrics_query_count_does_not_grow_with_orders(db):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            metrics_for_period(days=30, now=NOW)
        return len(ctx.captured_queries)

    with time_machine.travel(NOW, tick=False):
        make_order(status=S.DELIVERED, created_at=at(14))
        few = count_queries()
        for day in range(1, 15):
            make_order(status=S.DELIVERED, created_at=at(day), model_id=f"vendor/m{day}")
            make_order(status=S.PENDING, created_at=at(day), crypto_type="USDT_TRC20")
        many = count_queries()
    assert few == many
    assert many <= 5  # grouped totals, percentile(s), and on PostgreSQL the SET LOCAL work_mem


def test_parse_period_accepts_only_the_offered_periods():
    assert parse_period("7") == 7
    assert parse_period("90") == 90
    for hostile in ("", None, "8", "-7", "7; DROP TABLE", "1e3", "99999999999999999999"):
        assert parse_period(hostile) == 30


def test_period_starts_at_midnight_utc(settings):
    since, until = period_bounds(days=1, now=NOW)
    assert since == datetime(2026, 3, 15, tzinfo=UTC)
    assert until == NOW


# --- The chart -------------------------------------------------------------------------------


def test_nice_ceiling():
    assert [nice_ceiling(v) for v in (0, 1, 2, 3, 7, 10, 11, 40, 51, 999)] == [1, 1, 2, 5, 10, 10, 20, 50, 100, 1000]


def test_chart_bars_are_proportional_and_inside_the_plot():
    days = [DayCount(date(2026, 3, d), placed=p, delivered=dl) for d, p, dl in ((1, 10, 5), (2, 0, 0), (3, 4, 4))]
    chart = daily_bar_chart(days)
    assert chart.max_value == 10
    plot_h = chart.bottom - chart.top
    assert [b.height for b in chart.placed] == [plot_h, 0, plot_h * 4 // 10]
    assert chart.delivered[0].height == plot_h // 2
    for bar in chart.placed + chart.delivered:
        assert chart.left <= bar.x and bar.x + bar.width <= chart.right
        assert bar.y + bar.height == chart.bottom
    assert chart.x_labels[-1].label == "Mar 03"
    assert "10 placed" in chart.placed[0].title


# --- The page --------------------------------------------------------------------------------


def test_dashboard_shows_the_figures_and_an_svg_chart(dataset, staff_client, django_assert_max_num_queries):
    with time_machine.travel(NOW, tick=False), django_assert_max_num_queries(12):
        response = staff_client.get(reverse("orders:staff_metrics"), {"days": "7"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "last 7 days" in html
    assert "58.3%" in html and "57.1%" in html
    assert "$22.32" in html and "$3.72" in html and "$18.60" in html
    assert "$1.86" in html and "$5.58" in html
    assert "1 min" in html and "10 min" in html  # p50 60 s, p95 600 s
    assert "<svg" in html and html.count('class="bar-placed"') == 7
    assert "<script>" not in html


def test_dashboard_defaults_to_30_days_for_a_bad_period(dataset, staff_client):
    with time_machine.travel(NOW, tick=False):
        response = staff_client.get(reverse("orders:staff_metrics"), {"days": "<script>"})
    assert response.status_code == 200
    assert "last 30 days" in response.content.decode()


def test_capacity_unknown_when_nothing_cached_and_no_remote_call(staff_client, monkeypatch):
    # given: any attempt to compute capacity (which may call OpenRouter) fails the test
    import orders.services.capacity as capacity

    monkeypatch.setattr(capacity, "capacity_snapshot", lambda: pytest.fail("remote call while rendering"))
    # when
    response = staff_client.get(reverse("orders:staff_metrics"))
    # then
    assert response.status_code == 200
    assert "Unknown" in response.content.decode()


def test_capacity_from_cache_with_warning_colour_when_low(staff_client, settings):
    settings.CAPACITY_WARNING_USD = Decimal("50.00")
    cache.set(CAPACITY_CACHE_KEY, {"balance": "60.00", "promised": "25.50", "headroom": "34.50",
                                   "checked_at": NOW.isoformat()})
    html = staff_client.get(reverse("orders:staff_metrics")).content.decode()
    assert "$60.00" in html and "$25.50" in html and "$34.50" in html
    assert "capacity-low" in html and "top up OpenRouter" in html


def test_capacity_without_warning_when_headroom_is_comfortable(staff_client, settings):
    settings.CAPACITY_WARNING_USD = Decimal("50.00")
    cache.set(CAPACITY_CACHE_KEY, {"balance": "500.00", "promised": "25.50", "headroom": "474.50",
                                   "checked_at": NOW.isoformat()})
    html = staff_client.get(reverse("orders:staff_metrics")).content.decode()
    assert "$474.50" in html
    assert "capacity-low" not in html


def test_capacity_refresh_caches_the_snapshot_for_the_page(db, monkeypatch):
    from orders.services import capacity
    from orders.services.capacity_cache import capacity_refresh

    monkeypatch.setattr(
        capacity, "capacity_snapshot",
        lambda: capacity.CapacitySnapshot(
            balance=Decimal("80.00"), promised=Decimal("50.00"), headroom=Decimal("30.00")
        ),
    )
    refreshed = capacity_refresh()
    cached = capacity_cached()
    assert cached is not None and cached.headroom == Decimal("30.00") == refreshed.headroom
    assert cached.low  # 30 < 50


def test_corrupt_capacity_cache_reads_as_unknown(db):
    cache.set(CAPACITY_CACHE_KEY, {"balance": "not-a-number"})
    assert capacity_cached() is None


def test_metrics_anonymous_redirects_to_login(client):
    response = client.get(reverse("orders:staff_metrics"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_metrics_customer_gets_403(user_client):
    assert user_client.get(reverse("orders:staff_metrics")).status_code == 403
    assert user_client.get(reverse("orders:staff_export")).status_code == 403


def test_metrics_inactive_staff_gets_no_access(client):
    staff = UserFactory(is_staff=True, is_active=False)
    client.force_login(staff)
    assert client.get(reverse("orders:staff_metrics")).status_code in (302, 403)


def test_admin_index_links_to_the_dashboard(staff_client):
    html = staff_client.get(reverse("admin:index")).content.decode()
    assert reverse("orders:staff_metrics") in html


# --- CSV export ------------------------------------------------------------------------------


def _csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_export_streams_the_periods_orders_without_secrets(dataset, staff_client):
    # given: a delivered order holding an (encrypted) key and callback secret
    secret_order = dataset[0]
    type(secret_order).objects.filter(pk=secret_order.pk).update(
        key_encrypted="gAAAA-encrypted-key-material", callback_secret_encrypted="gAAAA-encrypted-secret"
    )
    # when
    with time_machine.travel(NOW, tick=False):
        response = staff_client.get(reverse("orders:staff_export"), {"days": "7"})
    # then
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = _csv(response)
    assert {r["order_id"] for r in rows} == {o.order_id for o in dataset[:12]}
    first = next(r for r in rows if r["order_id"] == secret_order.order_id)
    assert first["total_usd_cost"] == "2.16" and first["status"] == "delivered"
    assert first["customer_email"] == secret_order.user.email
    raw = "".join(str(r) for r in rows)
    assert "encrypted" not in raw and "key_encrypted" not in rows[0] and "callback_secret_encrypted" not in rows[0]


def test_export_neutralises_spreadsheet_formulas(staff_client):
    make_order(status=S.REFUNDED, refund_reference="=HYPERLINK(\"http://evil\")")
    response = staff_client.get(reverse("orders:staff_export"), {"days": "7"})
    (row,) = _csv(response)
    assert row["refund_reference"].startswith("'=")


def test_export_reads_orders_in_chunks_not_all_at_once(dataset, staff_client, django_assert_max_num_queries):
    with time_machine.travel(NOW, tick=False):
        response = staff_client.get(reverse("orders:staff_export"), {"days": "90"})
        with django_assert_max_num_queries(3):
            rows = _csv(response)
    assert len(rows) == 14
