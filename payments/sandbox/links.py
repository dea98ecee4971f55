"""Links into the gateway sandbox for other pages (the payment page's "simulate payment")."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.urls import NoReverseMatch, reverse


def sandbox_control_url(payment_hash: str, *, return_to: str | None = None) -> str | None:
    """The control page for a sandbox payment, or None when the sandbox is off (no such route).

    `return_to` (a path on this site) becomes a "back to the store" link on the control page.
    """
    if not settings.SANDBOX or not payment_hash:
        return None
    try:
        url = reverse("kryptoexpress_sandbox:control", args=[payment_hash])
    except NoReverseMatch:
        return None
    if return_to:
        url += "?" + urlencode({"return": return_to})
    return url
