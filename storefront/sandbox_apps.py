"""The base of the development-only sandbox apps, which are installed only when `SANDBOX` is on.

Product code never imports a sandbox. Where it can use one (a link to a payment's control page,
a client served in this process), it asks a hook in its own `dev_hooks` module; a sandbox app
fills those hooks when Django is ready. The pairs are written as dotted paths so that the
wiring of each sandbox reads as one line of its `apps.py` (docs/ARCHITECTURE.md, "Sandboxes").
"""

from __future__ import annotations

from typing import ClassVar

from django.apps import AppConfig
from django.utils.module_loading import import_string


class SandboxAppConfig(AppConfig):
    """Subclasses import this module, not the class: Django takes the only AppConfig class
    it finds in an `apps.py`, and an imported base would make two."""

    # register function → what it is given, both as dotted paths
    dev_hooks: ClassVar[dict[str, str]] = {}

    def ready(self) -> None:
        for register, provider in self.dev_hooks.items():
            import_string(register)(import_string(provider))
