"""What a delivered order's page shows its owner: the key, what it buys, how to use it.

Built from the database only (pages never call a remote API while rendering). The plaintext
key is decrypted here for the owner's page and nowhere else; callers must only use this for
the order's owner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.urls import reverse

from openrouter.models import AIModel
from orders.models import AITokenOrder, OrderStatus
from orders.services.key_usage import KeyUsage, key_usage_of
from storefront.encryption import InvalidToken, decrypt

logger = logging.getLogger("orders.delivery")

# Customers use their key against OpenRouter itself, whatever URL the store talks to.
OPENROUTER_PUBLIC_BASE_URL = "https://openrouter.ai/api/v1"
MASK = "•" * 12


@dataclass(frozen=True)
class Delivery:
    order_id: str
    key: str | None  # None when it cannot be decrypted (support must re-issue)
    key_masked: str
    model_id: str
    model_name: str
    token_count: int
    limit_usd: str
    expires_at: datetime | None
    usage: KeyUsage
    usage_url: str
    base_url: str = OPENROUTER_PUBLIC_BASE_URL


def mask_key(key: str) -> str:
    """Enough to recognise the key (its prefix and last four), nothing to use it."""
    prefix = "sk-or-v1-" if key.startswith("sk-or-v1-") else ""
    return f"{prefix}{MASK}{key[-4:]}" if len(key) > len(prefix) + 8 else MASK


def delivery_context(order: AITokenOrder) -> dict:
    """Template context for `orders/_delivery.html` (the owner's view of a delivered key)."""
    if order.status != OrderStatus.DELIVERED or not order.key_encrypted:
        return {}
    try:
        key = decrypt(order.key_encrypted)
    except InvalidToken:
        logger.error("order=%s delivered key cannot be decrypted (encryption key rotated away?)", order.order_id)
        key = None
    model_name = AIModel.objects.filter(pk=order.model_id).values_list("name", flat=True).first() or order.model_id
    return {
        "delivery": Delivery(
            order_id=order.order_id,
            key=key,
            key_masked=mask_key(key) if key else MASK,
            model_id=order.model_id,
            model_name=model_name,
            token_count=order.token_count,
            limit_usd=f"{order.base_usd_cost:.2f}",
            expires_at=order.key_expires_at,
            usage=key_usage_of(order),
            usage_url=reverse("orders:usage_fragment", args=[order.order_id]),
        )
    }


__all__ = ["OPENROUTER_PUBLIC_BASE_URL", "Delivery", "delivery_context", "mask_key"]
