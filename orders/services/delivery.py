"""What a delivered order's page shows. (Placeholder interface; the fulfilment work implements it.)"""

from __future__ import annotations

from orders.models import AITokenOrder


def delivery_context(order: AITokenOrder) -> dict:
    """Template context for `orders/_delivery.html` (the owner's view of a delivered key)."""
    return {}
