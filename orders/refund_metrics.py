"""Refund figures for the staff dashboard: refunds sent in a period, per currency (one GROUP BY).

Amounts are crypto units and are never added across currencies; `fees` is network + service fee.
Refunds still waiting (address given, in flight, in doubt) are counted apart so staff see them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Q, Sum

from orders.models import Refund, RefundStatus


@dataclass(frozen=True)
class RefundTotal:
    crypto_type: str
    sent: int
    total: Decimal
    fees: Decimal
    receiving: Decimal


@dataclass(frozen=True)
class RefundFigures:
    by_crypto: list[RefundTotal]
    sent: int
    waiting: int  # address given, not sent yet
    in_doubt: int  # sending or unknown: needs a re-check


def refund_figures(*, since: datetime, until: datetime) -> RefundFigures:
    """Refunds sent in [since, until) per currency, plus how many wait or are in doubt right now."""
    rows = (
        Refund.objects.filter(status=RefundStatus.SENT, refunded_at__gte=since, refunded_at__lt=until)
        .values("order__crypto_type")
        .annotate(
            sent=Count("id"), total=Sum("total_amount"), network=Sum("blockchain_fee_amount"),
            service=Sum("service_fee_amount"), receiving=Sum("receiving_amount"),
        )
        .order_by("order__crypto_type")
    )
    zero = Decimal("0")
    by_crypto = [
        RefundTotal(
            crypto_type=row["order__crypto_type"], sent=row["sent"], total=row["total"] or zero,
            fees=(row["network"] or zero) + (row["service"] or zero), receiving=row["receiving"] or zero,
        )
        for row in rows
    ]
    open_counts = Refund.objects.aggregate(
        waiting=Count("id", filter=Q(status__in=[RefundStatus.REQUESTED, RefundStatus.REFUSED])),
        in_doubt=Count("id", filter=Q(status__in=[RefundStatus.SENDING, RefundStatus.UNKNOWN])),
    )
    return RefundFigures(
        by_crypto=by_crypto, sent=sum(r.sent for r in by_crypto),
        waiting=open_counts["waiting"], in_doubt=open_counts["in_doubt"],
    )
