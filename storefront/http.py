"""The HTTP plumbing both service clients share; each client keeps only its service's words.

- `json_loads` / `json_dumps`: JSON with every fractional number as an exact `Decimal` (money
  never passes through a float) and NaN/Infinity refused.
- `retry_after_seconds`: one rule for a 429's "try again in": seconds or an HTTP date.
- `scrub`: remote text made safe for a log line or an exception message.
- `pooled_session`: a `requests.Session` with a sized connection pool and no hidden retries
  (timeouts are passed on every call by the clients, from `settings.HTTP_TIMEOUT`).
See docs/EXTERNAL_APIS.md, "What both clients share".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import simplejson
from requests.adapters import HTTPAdapter

from storefront.redaction import REDACTED, redact

USER_AGENT = "token-store/1.0"
# Longer than a day is not a retry hint a store can use; treat it as absent.
MAX_RETRY_AFTER_SECONDS = 86_400.0
# Configured secrets shorter than this would scrub ordinary words.
MIN_SECRET_LENGTH = 8


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name[:10]!r}")


def json_loads(raw: bytes | str) -> Any:
    """Parse JSON with fractional numbers as Decimal; ValueError for NaN/Infinity or bad JSON."""
    text = raw.decode("utf-8-sig") if isinstance(raw, bytes | bytearray) else raw
    return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)


def json_dumps(payload: Any) -> bytes:
    """Encode a request body, writing Decimals as exact JSON numbers."""
    return simplejson.dumps(payload, use_decimal=True).encode("utf-8")


def retry_after_seconds(*candidates: object) -> float | None:
    """Seconds to wait from the first usable candidate (a number of seconds or an HTTP date).

    Negative means "now" (0.0); garbage, NaN/Infinity and anything over a day are not usable.
    """
    for value in candidates:
        seconds = _seconds(value)
        if seconds is not None:
            return seconds
    return None


def _seconds(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        seconds = float(value)  # a duration, not money
    elif isinstance(value, str) and value.strip():
        raw = value.strip()
        try:
            seconds = float(raw)
        except ValueError:
            try:
                when = parsedate_to_datetime(raw)
            except (TypeError, ValueError, IndexError):
                return None
            if when is None:
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - datetime.now(UTC)).total_seconds()
    else:
        return None
    if not math.isfinite(seconds) or seconds > MAX_RETRY_AFTER_SECONDS:
        return None
    return max(seconds, 0.0)


def scrub(text: str, secrets: Iterable[str] = (), *, max_chars: int | None = None) -> str:
    """Text from a remote service, safe to log or raise: no secret, one line, bounded length.

    The given `secrets` (the client's API key, a callback secret) are replaced first, then
    anything the store's redaction recognises (configured secrets, key-shaped tokens).
    """
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    text = " ".join(redact(text).split())
    return text[:max_chars] if max_chars is not None else text


def pooled_session(
    *, pool_maxsize: int = 10, pool_connections: int = 10, user_agent: str = USER_AGENT
) -> requests.Session:
    """A session whose pool fits the caller's concurrency, with no automatic retries."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_connections, pool_maxsize=pool_maxsize, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


class ServiceClient:
    """What every service client holds: base URL, credentials, timeout and a session.

    The credential is kept private (`_api_key`) and never shown in a repr; subclasses say how
    to build a default session and add their service's calls.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float | tuple[float, float],
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key or ""
        self.timeout = timeout
        self.session = session if session is not None else self.default_session()

    def default_session(self) -> requests.Session:
        return pooled_session()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"


__all__ = ["ServiceClient", "json_dumps", "json_loads", "pooled_session", "retry_after_seconds", "scrub"]
