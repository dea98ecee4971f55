"""Customer emails. Each one links to the order page; none ever contains a key or secret."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from orders.models import AITokenOrder


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


def send_tokens_added(*, order: AITokenOrder) -> None:
    """Tell the customer a top-up landed on the key they already use (no key in the email)."""
    subject = f"Tokens added to your key — order {order.order_id}"
    _send_customer_email(order=order, template="tokens_added", subject=subject)


def send_tokens_ready(*, order: AITokenOrder) -> None:
    """Tell the customer their key is ready, with a link to the order page (the key itself stays there)."""
    subject = f"Your tokens are ready — order {order.order_id}"
    _send_customer_email(order=order, template="tokens_ready", subject=subject)
