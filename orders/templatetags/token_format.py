"""Token counts as people read them: 1.8M, 450k, 92k (the exact count goes in a title)."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()

_UNITS = ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k"))


def tokens_short(count: int) -> str:
    """At most three significant digits, rounded down so a short figure never promises more tokens."""
    count = int(count)
    for size, suffix in _UNITS:
        if count >= size:
            whole = count // size
            decimals = max(0, 3 - len(str(whole)))
            scaled = count * 10**decimals // size  # truncate, never round up
            text = format(Decimal(scaled).scaleb(-decimals), "f")
            if "." in text:
                text = text.rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return str(count)


register.filter("tokens_short", tokens_short)
