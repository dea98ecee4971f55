"""Business metrics for the staff dashboard, computed by the database.

Every figure comes from SQL aggregates over the orders *placed* in the period (created_at ≥ the
first day's midnight UTC): two scans whatever the number of orders, no Python loop over orders.
Definitions (shown on the page too):

- placed: every order created in the period.
- paid (paid-or-later): the payment was accepted — status paid, fulfilling, delivered or failed
  (failed happens only after payment). Expired, needs-review, refunded and still-pending orders
  are broken out separately.
- payment success rate = paid ÷ placed; delivery success rate = delivered ÷ paid.
- revenue = Σ total of delivered orders; markup earned = Σ markup of delivered orders;
  OpenRouter cost = Σ base cost (the key limits bought) of delivered orders.
- revenue per order = revenue ÷ placed; average order value = revenue ÷ delivered.
- payment → delivery time: nearest-rank percentiles (p50 / p95) of delivered_at − paid_at over
  delivered orders (`percentile_disc` on PostgreSQL; ORDER BY … OFFSET on SQLite — same answer).

The OpenRouter capacity shown next to these comes from the cache
(`orders.services.capacity_cache`), filled by the watchdog task; the page never calls OpenRouter.
The CSV export of the same orders is `orders.csv_export`.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from orders.models import AITokenOrder, OrderStatus

logger = logging.getLogger("orders.metrics")

S = OrderStatus
PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
PAID_OR_LATER = (S.PAID, S.FULFILLING, S.DELIVERED, S.FAILED)
CENT = Decimal("0.01")
TENTH = Decimal("0.1")


# Report rows are named tuples: a year's report builds hundreds, and a frozen dataclass's
# __init__ costs several times a tuple's.
class DayCount(NamedTuple):
    day: date
    placed: int
    delivered: int


class GroupRow(NamedTuple):
    """Orders by model or by crypto currency."""

    key: str
    placed: int
    delivered: int
    revenue: Decimal


@dataclass(frozen=True)
class Metrics:
    days: int
    since: datetime
    until: datetime
    placed: int
    paid: int
    delivered: int
    pending: int
    expired: int
    needs_review: int
    failed: int
    refunded: int
    revenue: Decimal
    markup: Decimal
    openrouter_cost: Decimal
    payment_success_rate: Decimal | None  # percent, one decimal
    delivery_success_rate: Decimal | None
    revenue_per_order: Decimal | None
    average_order_value: Decimal | None
    delivery_p50: timedelta | None
    delivery_p95: timedelta | None
    per_day: list[DayCount]
    by_model: list[GroupRow]
    by_crypto: list[GroupRow]


def parse_period(raw: str | None) -> int:
    """The `days` query parameter: one of PERIODS, anything else means the default."""
    try:
        days = int(raw or DEFAULT_PERIOD)
    except (TypeError, ValueError):
        return DEFAULT_PERIOD
    return days if days in PERIODS else DEFAULT_PERIOD


def period_bounds(*, days: int, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[midnight UTC `days − 1` days ago, now): whole days, today included."""
    now = now or timezone.now()
    first_day = now.astimezone(timezone.get_current_timezone()).date() - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first_day, time.min))
    return since, now


def orders_in_period(*, since: datetime, until: datetime) -> QuerySet[AITokenOrder]:
    return AITokenOrder.objects.filter(created_at__gte=since, created_at__lt=until)


def _rate(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(TENTH, rounding=ROUND_HALF_UP)


def _money(value: Decimal | None) -> Decimal:
    return (value or Decimal("0")).quantize(CENT, rounding=ROUND_HALF_UP)


def _per(total: Decimal, count: int) -> Decimal | None:
    if not count:
        return None
    return (total / count).quantize(CENT, rounding=ROUND_HALF_UP)


DELIVERED = Q(status=S.DELIVERED)


def _status_counts() -> dict:
    return {
        "placed": Count("id"),
        "paid": Count("id", filter=Q(status__in=PAID_OR_LATER)),
        "delivered": Count("id", filter=DELIVERED),
        "pending": Count("id", filter=Q(status=S.PENDING)),
        "expired": Count("id", filter=Q(status=S.EXPIRED)),
        "needs_review": Count("id", filter=Q(status=S.NEEDS_REVIEW)),
        "failed": Count("id", filter=Q(status=S.FAILED)),
        "refunded": Count("id", filter=Q(status=S.REFUNDED)),
        "revenue": Sum("total_usd_cost", filter=DELIVERED),
        "markup": Sum("markup_amount", filter=DELIVERED),
        "openrouter_cost": Sum("base_usd_cost", filter=DELIVERED),
        "timed": Count("id", filter=DELIVERED & Q(paid_at__isnull=False, delivered_at__isnull=False)),
    }


COUNT_FIELDS = ("placed", "paid", "delivered", "pending", "expired", "needs_review", "failed", "refunded", "timed")
MONEY_FIELDS = ("revenue", "markup", "openrouter_cost")
# Reporting queries sort/hash a whole period; give them room so nothing spills to disk (PostgreSQL).
REPORT_WORK_MEM = "32MB"


def metrics_for_period(*, days: int, now: datetime | None = None) -> Metrics:
    """Every dashboard figure for the last `days` days: two scans of the period, whatever its size.

    1. One GROUP BY (day, model, crypto) with every count and sum as a filtered aggregate: the
       database folds the period's orders into at most days × models × currencies subtotals
       (a few hundred rows); the daily series, the period totals and the by-model / by-crypto
       tables are sums of those subtotals.
    2. The delivery-time percentiles (one more query per percentile on SQLite).
    """
    since, until = period_bounds(days=days, now=now)
    orders = orders_in_period(since=since, until=until)
    with _report_session():
        groups = list(
            orders.annotate(day=TruncDate("created_at"))
            .values("day", "model_id", "crypto_type")
            .annotate(**_status_counts())
            .order_by()  # unordered: PostgreSQL hash-aggregates instead of sorting the period
        )
        totals = _sum_groups(groups)
        p50, p95 = delivery_percentiles(orders=orders, count=totals["timed"])
    revenue = _money(totals["revenue"])
    return Metrics(
        days=days, since=since, until=until,
        **{name: totals[name] for name in COUNT_FIELDS if name != "timed"},
        revenue=revenue, markup=_money(totals["markup"]), openrouter_cost=_money(totals["openrouter_cost"]),
        payment_success_rate=_rate(totals["paid"], totals["placed"]),
        delivery_success_rate=_rate(totals["delivered"], totals["paid"]),
        revenue_per_order=_per(revenue, totals["placed"]),
        average_order_value=_per(revenue, totals["delivered"]),
        delivery_p50=p50, delivery_p95=p95,
        per_day=_every_day(groups, since=since, until=until),
        by_model=_breakdown(groups, "model_id"),
        by_crypto=_breakdown(groups, "crypto_type"),
    )


@contextmanager
def _report_session() -> Iterator[None]:
    """On PostgreSQL, a transaction with more sort/hash memory (SET LOCAL ends with it)."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'")
        yield


def _sum_groups(groups: list[dict]) -> dict:
    totals: dict = {name: sum(g[name] for g in groups) for name in COUNT_FIELDS}
    totals.update({name: sum((g[name] or 0 for g in groups), Decimal("0")) for name in MONEY_FIELDS})
    return totals


def _every_day(groups: list[dict], *, since: datetime, until: datetime) -> list[DayCount]:
    """One entry per day of the period, days without orders included as zeros."""
    placed: dict[date, int] = defaultdict(int)
    delivered: dict[date, int] = defaultdict(int)
    for g in groups:
        placed[g["day"]] += g["placed"]
        delivered[g["day"]] += g["delivered"]
    tz = timezone.get_current_timezone()
    first, last = since.astimezone(tz).date(), until.astimezone(tz).date()
    days = (first + timedelta(days=offset) for offset in range((last - first).days + 1))
    return [DayCount(day=day, placed=placed[day], delivered=delivered[day]) for day in days]


def _breakdown(groups: list[dict], column: str) -> list[GroupRow]:
    """Orders by `column` (model or crypto), most orders first."""
    acc: dict[str, list] = {}
    for g in groups:
        row = acc.setdefault(g[column], [0, 0, Decimal("0")])
        row[0] += g["placed"]
        row[1] += g["delivered"]
        row[2] += g["revenue"] or 0
    ranked = sorted(acc.items(), key=lambda item: (-item[1][0], item[0]))
    return [GroupRow(key, placed, delivered, _money(revenue)) for key, (placed, delivered, revenue) in ranked]


class PercentileDisc(Aggregate):
    """PostgreSQL's ordered-set aggregate: the first value whose cumulative share ≥ fraction."""

    function = "percentile_disc"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"


_DELIVERY_TIME = ExpressionWrapper(F("delivered_at") - F("paid_at"), output_field=DurationField())
P50, P95 = Decimal("0.5"), Decimal("0.95")


def delivery_percentiles(
    *, orders: QuerySet[AITokenOrder], count: int
) -> tuple[timedelta | None, timedelta | None]:
    """p50 / p95 of (delivered_at − paid_at) over delivered orders, by the nearest-rank method.

    `count` is the number of delivered orders with both timestamps (from the totals query).
    """
    if not count:
        return None, None
    timed = orders.filter(DELIVERED, paid_at__isnull=False, delivered_at__isnull=False)
    if connection.vendor == "postgresql":
        values = timed.aggregate(
            p50=PercentileDisc(_DELIVERY_TIME, fraction=str(P50), output_field=DurationField()),
            p95=PercentileDisc(_DELIVERY_TIME, fraction=str(P95), output_field=DurationField()),
        )
        return values["p50"], values["p95"]
    # Portable: the k-th smallest value via ORDER BY … LIMIT 1 OFFSET k-1 (one row read per query).
    ordered = timed.annotate(delivery_time=_DELIVERY_TIME).order_by("delivery_time")
    return tuple(ordered.values_list("delivery_time", flat=True)[_rank(p, count) - 1] for p in (P50, P95))


def _rank(fraction: Decimal, count: int) -> int:
    """Nearest rank: the smallest k with k / count ≥ fraction (1-based)."""
    return max(1, math.ceil(fraction * count))
