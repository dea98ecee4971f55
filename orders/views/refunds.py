"""The customer's refund address: `POST /orders/<order_id>/refund-address/` (owner only).

Thin: parse the field, call `refund_set_address`, go back to the order page (post/redirect/get,
so it works without JavaScript). A refusal is shown next to the field on the order page.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_POST

from orders.models import AITokenOrder
from orders.services.refunds import RefundRefused, refund_set_address
from orders.views.order_pages import order_id_or_404

MAX_FIELD_CHARS = 10_000
SESSION_KEY = "refund-address:{order_id}"


@login_required
@require_POST
def refund_address(request: HttpRequest, order_id: str) -> HttpResponse:
    """Record where the customer wants their money back. Only the order's owner may (404 for others)."""
    if len(order_id) > 50:
        raise Http404("No such order.")
    order = get_object_or_404(AITokenOrder, order_id=order_id_or_404(order_id), user_id=request.user.pk)
    address = request.POST.get("address", "")[:MAX_FIELD_CHARS]
    target = reverse("orders:detail", kwargs={"order_id": order.order_id}) + "#refund"
    try:
        refund_set_address(order=order, address=address, actor=request.user)
    except RefundRefused as exc:
        request.session[SESSION_KEY.format(order_id=order.order_id)] = {"error": str(exc), "value": address[:200]}
        return HttpResponseRedirect(target)
    key = SESSION_KEY.format(order_id=order.order_id)
    request.session[key] = {"notice": "Thank you — we have your refund address."}
    return HttpResponseRedirect(target)
