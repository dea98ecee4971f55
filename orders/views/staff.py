"""Staff-only pages outside the admin: the metrics dashboard and the CSV export.

Anonymous visitors are sent to log in; logged-in customers get 403. Both pages read the
database (aggregates) and the cache only — never OpenRouter or the gateway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from orders.charts import daily_bar_chart
from orders.csv_export import orders_csv_lines
from orders.metrics import PERIODS, metrics_for_period, parse_period, period_bounds
from orders.refund_metrics import refund_figures
from orders.services.capacity_cache import capacity_cached

logger = logging.getLogger("orders.staff")


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous → login page (then back here); authenticated non-staff → 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


@require_safe
@staff_required
def metrics(request: HttpRequest) -> HttpResponse:
    """The dashboard: business figures for 7 / 30 / 90 days, orders per day, capacity."""
    days = parse_period(request.GET.get("days"))
    figures = metrics_for_period(days=days)
    capacity = capacity_cached()
    context = {
        **admin.site.each_context(request),
        "title": "Metrics",
        "m": figures,
        "periods": PERIODS,
        "chart": daily_bar_chart(figures.per_day),
        "capacity": capacity,
        "capacity_warning_usd": settings.CAPACITY_WARNING_USD,
        "refunds": refund_figures(since=figures.since, until=figures.until),
    }
    return render(request, "staff/metrics.html", context)


@require_safe
@staff_required
def export_orders_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The period's orders as CSV, streamed row by row (constant memory for any number of orders)."""
    days = parse_period(request.GET.get("days"))
    since, until = period_bounds(days=days)
    logger.info("staff_export actor=%s days=%s", request.user.pk, days)
    response = StreamingHttpResponse(orders_csv_lines(since=since, until=until), content_type="text/csv")
    filename = f"orders-{since:%Y%m%d}-{until:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
