"""`{% top_up_info order as info %}`: what `orders/_topup.html` shows, from the database only.

A tag (not view context) so the order page hooks top-ups in with a single include line.
"""

from __future__ import annotations

from django import template

from orders.services.top_up import top_up_context

register = template.Library()


@register.simple_tag(takes_context=True)
def top_up_info(context, order) -> dict:
    request = context.get("request")
    return top_up_context(order, viewer=getattr(request, "user", None))
