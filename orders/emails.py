"""Customer emails. Each one links to the order page; none ever contains a key or secret."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from orders.models import AITokenOrder
from payments.currencies import format_amount
from payments.explorers import explorer_tx_url


def order_page_url(order: AITokenOrder) -> str:
    """Absolute link to the order's page (emails carry links, never keys or secrets)."""
    return settings.SITE_URL + reverse("orders:detail", kwargs={"order_id": order.order_id})


def _send_customer_email(*, order: AITokenOrder, template: str, subject: str) -> None:
    context = {"order": order, "order_url": order_page_url(order), "site_url": settings.SITE_URL}
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"emails/{template}.txt", context),
        to=[order.user.email],
    )
    message.attach_alternative(render_to_string(f"emails/{template}.html", context), "text/html")
    message.send()


def send_payment_received(*, order: AITokenOrder) -> None:
    """Tell the customer their payment arrived and their tokens are being bought."""
    _send_customer_email(order=order, template="payment_received", subject=f"Payment received — order {order.order_id}")


def send_order_expired(*, order: AITokenOrder) -> None:
    """Tell the customer the payment window closed unpaid (and how to get a new quote)."""
    _send_customer_email(order=order, template="order_expired", subject=f"Order {order.order_id} expired unpaid")


def send_tokens_ready(*, order: AITokenOrder) -> None:
    """Tell the customer their key is ready, with a link to the order page (the key itself stays there)."""
    subject = f"Your tokens are ready — order {order.order_id}"
    _send_customer_email(order=order, template="tokens_ready", subject=subject)


def send_refund_sent(*, order: AITokenOrder) -> None:
    """Tell the customer their refund left the gateway: the transaction id(s) and explorer links."""

    refund = order.refund
    transactions = [
        {"tx_id": tx, "url": explorer_tx_url(crypto_type=order.crypto_type, tx_id=tx)} for tx in refund.tx_ids or []
    ]
    context = {
        "order": order,
        "refund": refund,
        "transactions": transactions,
        "receiving": format_amount(refund.receiving_amount) if refund.receiving_amount is not None else "",
        "order_url": order_page_url(order),
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
        subject=f"Your refund is on its way — order {order.order_id}",
        body=render_to_string("emails/refund_sent.txt", context),
        to=[order.user.email],
    )
    message.attach_alternative(render_to_string("emails/refund_sent.html", context), "text/html")
    message.send()
