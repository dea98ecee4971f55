"""Refund an order to the customer's address through the gateway — for operators and scripts.

`refund_order ORDER_ID` prints the gateway's dry run (nothing is sent); `--confirm` sends it (at
most once per order, see `orders.services.refunds`); `--reconcile` re-checks a refund whose
outcome is unknown. Exit status 1 with the reason when the refund is refused.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from orders.models import AITokenOrder, RefundStatus
from orders.services import refunds
from payments.currencies import format_amount


class Command(BaseCommand):
    help = "Show the refund dry run for ORDER_ID; --confirm sends it; --reconcile re-checks an unknown outcome."

    def add_arguments(self, parser) -> None:
        parser.add_argument("order_id")
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--confirm", action="store_true", help="Send the refund (money leaves the gateway).")
        group.add_argument("--reconcile", action="store_true", help="Re-read isWithdrawn for a refund in doubt.")

    def handle(self, *args, order_id: str, confirm: bool, reconcile: bool, **options) -> None:
        order = AITokenOrder.objects.filter(order_id=order_id.strip()).first()
        if order is None:
            raise CommandError(f"No order {order_id[:60]!r}.")
        try:
            if reconcile:
                self.stdout.write(refunds.refund_reconcile(order=order))
                return
            quote = refunds.refund_quote(order=order)
            self._print_quote(quote)
            if not confirm:
                self.stdout.write("Dry run only: nothing was sent. Add --confirm to send it.")
                return
            refund = refunds.refund_confirm(order=order, expected_address=quote.address)
        except refunds.RefundRefused as exc:
            raise CommandError(f"Refused: {exc}") from None
        if refund.status == RefundStatus.SENT:
            self.stdout.write(self.style.SUCCESS(f"Sent. Transaction(s): {', '.join(refund.tx_ids) or 'not reported'}"))
            return
        reason = refund.last_error or "see the order events"
        raise CommandError(f"Not sent: {RefundStatus(refund.status).label} — {reason}")

    def _print_quote(self, quote: refunds.RefundQuote) -> None:
        code = quote.crypto_type
        self.stdout.write(f"Refund of {quote.order_id} to {quote.address}")
        self.stdout.write(f"  amount paid      {format_amount(quote.total)} {code}")
        self.stdout.write(f"  network fee      {format_amount(quote.blockchain_fee)} {code}")
        self.stdout.write(f"  service fee      {format_amount(quote.service_fee)} {code}")
        self.stdout.write(f"  customer gets    {format_amount(quote.receiving)} {code}")
