"""Hooks a development-only gateway (the sandbox app) fills in; product code only asks them.

The store never imports a sandbox module. When the KryptoExpress sandbox is installed (sandbox
mode only), its AppConfig registers how to link to a payment's control page, where a developer
pays, underpays or expires a payment by hand. In production nothing is registered and every
answer is "no link" (docs/ARCHITECTURE.md, "Sandboxes").
"""

from __future__ import annotations

from collections.abc import Callable

ControlUrl = Callable[..., "str | None"]

_control_url: ControlUrl | None = None


def payment_control_url_register(builder: ControlUrl) -> None:
    """Called by the sandbox app's `ready()`: `builder(payment_hash, *, return_to=None)`."""
    global _control_url
    _control_url = builder


def payment_control_url(payment_hash: str, *, return_to: str | None = None) -> str | None:
    """A link to this payment's control page, or None when no development gateway offers one."""
    if _control_url is None or not payment_hash:
        return None
    return _control_url(payment_hash, return_to=return_to)
