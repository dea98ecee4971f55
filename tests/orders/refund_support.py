"""Orders whose payment really exists (and is paid) in the gateway sandbox, ready to refund."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from orders.models import AITokenOrder, OrderReason, OrderStatus
from payments.sandbox import gateway
from payments.sandbox.models import SandboxPayment
from tests.factories import OrderFactory

BTC_REFUND_ADDRESS = "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"
TRON_REFUND_ADDRESS = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"


def paid_sandbox_order(
    *, user=None, status: str = OrderStatus.NEEDS_REVIEW, crypto: str = "BTC", total: Decimal = Decimal("2.16"), **extra
) -> AITokenOrder:
    """A `needs_review` (paid late) order whose gateway payment is paid and not withdrawn."""
    payment = gateway.sandbox_payment_create(
        payload={
            "fiatCurrency": "USD", "paymentType": "PAYMENT", "fiatAmount": total, "cryptoCurrency": crypto,
            "callbackUrl": "http://127.0.0.1:9/never",
        }
    )
    now = timezone.now()
    SandboxPayment.objects.filter(pk=payment.pk).update(is_paid=True, paid_at=now)
    fields = {
        "status": status, "reason": OrderReason.PAID_LATE if status == OrderStatus.NEEDS_REVIEW else "",
        "crypto_type": crypto, "crypto_amount": payment.crypto_amount, "payment_id": str(payment.pk),
        "payment_hash": payment.hash, "address": payment.address, "paid_at": now, "total_usd_cost": total,
        **extra,
    }
    if user is not None:
        fields["user"] = user
    return OrderFactory(**fields)
