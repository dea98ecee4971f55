"""Scrub secrets out of text that leaves the process (log lines, staff emails).

A last line of defence: code should never put a secret into a message in the first place, but if
one slips through (an exception text quoting a request, a key pasted into a note), it is replaced
before anyone can read it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.conf import settings

REDACTED = "[redacted]"
# OpenRouter keys ("sk-or-v1-…") and anything shaped like a bearer token.
_PATTERNS = (
    re.compile(r"sk-or-[A-Za-z0-9_-]{6,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{12,}"),
    re.compile(r"(?i)(x-api-key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._~+/=-]{8,}"),
)
# Configured secrets shorter than this are not worth matching (and would match ordinary words).
_MIN_SECRET_LENGTH = 8


def _configured_secrets() -> Iterable[str]:
    for name in ("OPENROUTER_API_KEY", "KRYPTO_EXPRESS_API_KEY", "SECRET_KEY", "EMAIL_HOST_PASSWORD"):
        value = getattr(settings, name, "") or ""
        if len(value) >= _MIN_SECRET_LENGTH:
            yield value
    for value in getattr(settings, "FIELD_ENCRYPTION_KEYS", ()) or ():
        if len(value) >= _MIN_SECRET_LENGTH:
            yield value


def redact(text: str) -> str:
    """Return `text` with configured secrets and key-shaped tokens replaced by `[redacted]`."""
    if not text:
        return text
    for secret in _configured_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        replacement = (lambda m: m.group(1) + REDACTED) if pattern.groups else REDACTED
        text = pattern.sub(replacement, text)
    return text
