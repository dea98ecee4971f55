"""The live usage fragment of a delivered key (htmx), for the order's owner only.

Renders stored numbers; when they are older than a minute it asks a worker to refresh them.
It never calls OpenRouter itself.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from orders.models import AITokenOrder, OrderStatus
from orders.services.key_usage import key_usage_show
from orders.views.order_pages import order_id_or_404


@require_GET
@never_cache
def key_usage_fragment(request: HttpRequest, order_id: str) -> HttpResponse:
    """`orders/<id>/usage/`: 404 for anyone but the owner (no hint that the order exists)."""
    if not request.user.is_authenticated:
        raise Http404
    order = get_object_or_404(
        AITokenOrder, order_id=order_id_or_404(order_id), user=request.user, status=OrderStatus.DELIVERED
    )
    return render(request, "orders/_usage.html", {"usage": key_usage_show(order=order)})
