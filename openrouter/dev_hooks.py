"""Hooks a development-only OpenRouter (the sandbox app) fills in; product code only asks them.

`manage.py sync_models --in-process` seeds the catalogue before the web server that hosts the
sandbox is up. The sandbox app registers a factory for a client whose requests are served in
this process; without the sandbox there is none (docs/ARCHITECTURE.md, "Sandboxes").
"""

from __future__ import annotations

from collections.abc import Callable

from openrouter.client import OpenRouterClient

_in_process_client: Callable[[], OpenRouterClient] | None = None


def in_process_client_register(factory: Callable[[], OpenRouterClient]) -> None:
    """Called by the sandbox app's `ready()`."""
    global _in_process_client
    _in_process_client = factory


def in_process_client() -> OpenRouterClient | None:
    """A client served by this process's sandbox, or None when the sandbox is not installed."""
    return _in_process_client() if _in_process_client is not None else None
