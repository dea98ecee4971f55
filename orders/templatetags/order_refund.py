"""`{% refund_panel %}`: the refund section of the order page, self-contained.

The order page includes `orders/_refund.html`, which calls this tag: one query (the order's
refund), never the gateway. A refusal from the refund-address form comes back through the session
and is shown next to the field.
"""

from __future__ import annotations

from django import template

from orders.models import Refund, RefundStatus
from orders.services.refunds import ADDRESS_CHANGEABLE, PUBLIC_STATUS, refund_can_request, refund_network_label
from orders.views.refunds import SESSION_KEY
from payments.currencies import format_amount, get_currency
from payments.explorers import explorer_tx_url

register = template.Library()


@register.inclusion_tag("orders/_refund_panel.html", takes_context=True)
def refund_panel(context) -> dict:
    order = context.get("order")
    request = context.get("request")
    if order is None or request is None:
        return {"show": False}
    refund = Refund.objects.filter(order_id=order.pk).first()
    can_request = refund_can_request(order=order)
    # An address given for an offer that no longer stands (staff approved the payment instead, or
    # withdrew the refund offer) is not a refund: the section shows only while one is possible or started.
    if not can_request and (refund is None or refund.status in ADDRESS_CHANGEABLE):
        return {"show": False}
    is_owner = order.user_id == getattr(request.user, "pk", None)
    flash = request.session.pop(SESSION_KEY.format(order_id=order.order_id), None) if is_owner else None
    currency = get_currency(order.crypto_type)
    status = PUBLIC_STATUS.get(refund.status) if refund else None
    return {
        "show": True,
        "order": order,
        "refund": refund,
        "public_status": status,
        "can_edit": is_owner and can_request and (refund is None or refund.status in ADDRESS_CHANGEABLE),
        "network": refund_network_label(order.crypto_type),
        "symbol": currency.symbol if currency else order.crypto_type,
        "error": (flash or {}).get("error", ""),
        "notice": (flash or {}).get("notice", ""),
        "value": (flash or {}).get("value", "") or (refund.address if refund else ""),
        "receiving": format_amount(refund.receiving_amount) if refund and refund.receiving_amount else "",
        "fee": format_amount(refund.fee_amount) if refund and refund.fee_amount is not None else "",
        "transactions": [
            {"tx_id": tx, "url": explorer_tx_url(crypto_type=order.crypto_type, tx_id=tx)}
            for tx in (refund.tx_ids if refund and refund.status == RefundStatus.SENT else [])
        ],
        "csrf_token": context.get("csrf_token"),
    }
