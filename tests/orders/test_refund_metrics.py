"""Refunds in the staff metrics and the CSV export: counts and crypto amounts, never summed across currencies."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.csv_export import orders_csv_lines
from orders.models import OrderStatus, Refund, RefundStatus
from orders.refund_metrics import refund_figures
from orders.templatetags.staff_format import crypto_amount
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def sent_refund(crypto: str, total: str, network: str, service: str, *, when=None) -> Refund:
    order = OrderFactory(status=OrderStatus.REFUNDED, crypto_type=crypto)
    total_d, network_d, service_d = Decimal(total), Decimal(network), Decimal(service)
    return Refund.objects.create(
        order=order,
        address="addr",
        network="bitcoin",
        status=RefundStatus.SENT,
        refunded_at=when or timezone.now(),
        total_amount=total_d,
        blockchain_fee_amount=network_d,
        service_fee_amount=service_d,
        receiving_amount=total_d - network_d - service_d,
        tx_ids=["ab" * 32],
    )


def test_refund_figures_per_currency_with_waiting_and_in_doubt(django_assert_max_num_queries):
    now = timezone.now()
    sent_refund("BTC", "0.00002227", "0.0000035", "0.00000012")
    sent_refund("BTC", "0.00001000", "0.0000035", "0.00000005")
    sent_refund("USDT_TRC20", "5", "1", "0.025")
    sent_refund("BTC", "0.5", "0.0000035", "0.0025", when=now - timedelta(days=40))  # outside the period
    Refund.objects.create(order=OrderFactory(status=OrderStatus.NEEDS_REVIEW), address="a", network="bitcoin")
    Refund.objects.create(
        order=OrderFactory(status=OrderStatus.FAILED),
        address="a",
        network="bitcoin",
        status=RefundStatus.UNKNOWN,
        sending_since=now,
    )
    with django_assert_max_num_queries(2):
        figures = refund_figures(since=now - timedelta(days=30), until=now + timedelta(hours=1))
    assert (figures.sent, figures.waiting, figures.in_doubt) == (3, 1, 1)
    btc, usdt = figures.by_crypto
    assert (btc.crypto_type, btc.sent, btc.total, btc.fees) == ("BTC", 2, Decimal("0.00003227"), Decimal("0.00000717"))
    shown = crypto_amount(btc.receiving), crypto_amount(usdt.receiving), crypto_amount(usdt.fees)
    assert shown == ("0.0000251", "3.975", "1.025")


def test_metrics_page_shows_refunds(staff_client):
    sent_refund("USDT_TRC20", "5", "1", "0.025")
    html = staff_client.get("/staff/metrics/").content.decode()
    assert "Refunds to customers" in html and "3.975" in html and "1 sent in this period" in html


def test_csv_export_has_refund_columns():
    refund = sent_refund("BTC", "0.00002227", "0.0000035", "0.00000012")
    OrderFactory()  # no refund: empty cells
    now = timezone.now()
    rows = list(
        csv.DictReader(
            io.StringIO("".join(orders_csv_lines(since=now - timedelta(days=1), until=now + timedelta(days=1))))
        )
    )
    by_id = {row["order_id"]: row for row in rows}
    row = by_id[refund.order.order_id]
    assert row["refund_status"] == "sent" and Decimal(row["refund_total_crypto"]) == Decimal("0.00002227")
    assert Decimal(row["refund_receiving_crypto"]) == Decimal("0.00001865") and row["refunded_at"]
    other = next(r for r in rows if r["order_id"] != refund.order.order_id)
    assert other["refund_status"] == "" and other["refunded_at"] == ""


def test_watchdog_alerts_about_refunds_in_doubt(settings, mailoutbox):
    from orders.services.watchdog import alerts_watchdog

    settings.ADMINS = [("Staff", "staff@example.com")]
    stale = timezone.now() - timedelta(seconds=settings.REFUND_STALE_SECONDS + 60)
    refund = Refund.objects.create(order=OrderFactory(status=OrderStatus.NEEDS_REVIEW), address="a",
                                   network="bitcoin", status=RefundStatus.SENDING, sending_since=stale)
    report = alerts_watchdog()
    assert "refunds_in_doubt" in report.alerts
    assert any(refund.order.order_id in m.body and "in doubt" in m.subject for m in mailoutbox)
