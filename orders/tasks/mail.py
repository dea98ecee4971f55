"""Customer mail, sent off the request and transaction path, retried while the mail server is down."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task

from orders.customer_mail import customer_mail_send
from orders.models import AITokenOrder

logger = logging.getLogger("orders.customer_mail")

__all__ = ["send_customer_mail"]


@shared_task(
    name="orders.tasks.send_customer_mail",
    ignore_result=True,
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=8,
    soft_time_limit=50,
    time_limit=60,
)
def send_customer_mail(order_pk: int, kind: str, occasion: str = "") -> bool:
    """Send mail `kind` for the order (at most once per order, kind and occasion)."""
    order = AITokenOrder.objects.select_related("user").filter(pk=order_pk).first()
    if order is None:
        logger.warning("order_pk=%s customer mail %s: order is gone", order_pk, kind)
        return False
    return customer_mail_send(order=order, kind=kind, occasion=occasion)
