"""Customer emails (kept for their callers): each is one kind in `orders.customer_mail`.

Each one links to the order page; none ever contains a key or secret.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from orders import customer_mail
from orders.models import AITokenOrder


def order_page_url(order: AITokenOrder) -> str:
    """Absolute link to the order's page (emails carry links, never keys or secrets)."""
    return settings.SITE_URL + reverse("orders:detail", kwargs={"order_id": order.order_id})


def send_payment_received(*, order: AITokenOrder) -> None:
    """Tell the customer their payment arrived and their tokens are being bought."""
    customer_mail.customer_mail_send(order=order, kind=customer_mail.PAID)


def send_order_expired(*, order: AITokenOrder) -> None:
    """Tell the customer the payment window closed unpaid (and how to get a new quote)."""
    customer_mail.customer_mail_send(order=order, kind=customer_mail.EXPIRED)


def send_tokens_ready(*, order: AITokenOrder) -> None:
    """Tell the customer their key is ready, with a link to the order page (the key itself stays there)."""
    customer_mail.customer_mail_send(order=order, kind=customer_mail.DELIVERED)
