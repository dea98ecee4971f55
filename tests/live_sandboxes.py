"""Pointing the store's clients at the sandboxes served by a test's live server.

Both sandboxes are mounted under the store's own URLs (storefront/urls.py), so a live server
is also a live KryptoExpress and a live OpenRouter; these say where, once.
"""

from __future__ import annotations

KRYPTOEXPRESS_SANDBOX_API = "/sandbox/kryptoexpress/api"
OPENROUTER_SANDBOX_API = "/sandbox/openrouter/api/v1"


def use_live_gateway(settings, url: str) -> str:
    """The payment client talks to the KryptoExpress sandbox at `url`; returns its API URL.

    Any Host is accepted, as the sandbox's callbacks and the test's requests name the live server.
    """
    settings.ALLOWED_HOSTS = ["*"]
    settings.KRYPTO_EXPRESS_API_URL = url + KRYPTOEXPRESS_SANDBOX_API
    return settings.KRYPTO_EXPRESS_API_URL


def use_live_openrouter(settings, url: str) -> str:
    """The OpenRouter client talks to the OpenRouter sandbox at `url`; returns its API URL."""
    settings.OPENROUTER_API_URL = url + OPENROUTER_SANDBOX_API
    return settings.OPENROUTER_API_URL
