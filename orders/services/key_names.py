"""How an OpenRouter key is named for its order, and how to read the order id back.

The name carries the order id so that a key left behind by a crashed attempt (its plaintext lost)
can be found and deleted by the next attempt, the targeted sweep or the reconciler.
"""

from __future__ import annotations

import re

from orders.models import AITokenOrder

KEY_NAME_PREFIX = "Token Store "
# Order ids are "TS-" + token_urlsafe(12); a key "carries an order id" when its name contains one.
ORDER_ID_IN_NAME = re.compile(r"TS-[A-Za-z0-9_-]{8,46}")


def key_name(order: AITokenOrder) -> str:
    """The OpenRouter key name: it carries the order id so a crashed attempt's key can be found."""
    return f"{KEY_NAME_PREFIX}{order.order_id}"


def order_id_from_key_name(name: str | None) -> str | None:
    match = ORDER_ID_IN_NAME.search(name or "")
    return match.group(0) if match else None


__all__ = ["KEY_NAME_PREFIX", "ORDER_ID_IN_NAME", "key_name", "order_id_from_key_name"]
