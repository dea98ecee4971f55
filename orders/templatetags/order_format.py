"""Display helpers for customer pages and mail: plain currency names, amounts at full precision."""

from __future__ import annotations

from decimal import Decimal

from django import template

from orders.views.order_page_context import CUSTOMER_STATUS_LABELS
from payments.currencies import format_quoted, get_currency

register = template.Library()


@register.filter
def currency_name(code: str) -> str:
    """`USDT_TRC20` → "USDT on TRON (TRC-20)": customers never read gateway codes."""
    currency = get_currency(code)
    return currency.display_name if currency else str(code)


@register.filter
def currency_symbol(code: str) -> str:
    """`USDT_TRC20` → "USDT" (the ticker wallets show)."""
    currency = get_currency(code)
    return currency.symbol if currency else str(code)


@register.filter
def crypto(amount: Decimal | None, code: str) -> str:
    """The amount with every decimal place of its currency ("10.800000"); "—" when not quoted yet."""
    return "—" if amount is None else format_quoted(amount, code)


@register.filter
def customer_status(status: str) -> str:
    """The status as customers read it ("Delayed", never "Failed")."""

    return CUSTOMER_STATUS_LABELS.get(status, str(status))
