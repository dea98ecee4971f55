"""Display helpers for the staff pages."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import template
from django.db.models import Count, Q

from orders.models import AITokenOrder, OrderStatus
from payments.currencies import format_amount

register = template.Library()


@register.filter
def duration(value: timedelta | None) -> str:
    """`timedelta(seconds=3725)` → "1 h 2 min"; short ones keep seconds ("2 min 5 s")."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def usd(value: Decimal | None) -> str:
    """`Decimal("1234.5")` → "$1,234.50"; None → "—"."""
    if value is None:
        return "—"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


@register.filter
def percent(value: Decimal | None) -> str:
    return "—" if value is None else f"{value}%"


@register.filter
def crypto_amount(value: Decimal) -> str:
    """A crypto amount in plain digits (`Decimal("2.5E-7")` → "0.00000025"); never added across currencies."""
    return format_amount(value)


@register.simple_tag
def staff_order_counts() -> dict[str, int]:
    """How many orders wait for staff, by status (one indexed COUNT query) for the admin index."""
    return AITokenOrder.objects.aggregate(
        needs_review=Count("pk", filter=Q(status=OrderStatus.NEEDS_REVIEW)),
        failed=Count("pk", filter=Q(status=OrderStatus.FAILED)),
    )
