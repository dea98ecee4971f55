"""A thin HTTP client for OpenRouter (docs/EXTERNAL_APIS.md, "OpenRouter").

It speaks OpenRouter's language and nothing else: small frozen dataclasses in, typed exceptions
out. Money is parsed with ``parse_float=Decimal`` (prices arrive as strings and become
``Decimal(str)``) and sent with ``simplejson.dumps(..., use_decimal=True)``.

The management key is a bearer token: it is only ever placed in the ``Authorization`` header of
an authenticated request. It never appears in a log line, an exception message or a repr, and
any text the remote side sends back is scrubbed of it before it reaches either.

Why this module is long: it is the whole of OpenRouter's vocabulary the store uses (exception
tree, typed records and their parsers, seven calls); the shared plumbing lives in `storefront.http`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings

from storefront.http import ServiceClient, json_dumps, json_loads, pooled_session, retry_after_seconds, scrub

logger = logging.getLogger("openrouter.client")

KEYS_PAGE_SIZE = 100  # OpenRouter returns at most 100 keys per page of GET /keys.
_MAX_KEY_PAGES = 1000  # 100,000 keys: far beyond this store; stops a server that ignores `offset`.
_MAX_MESSAGE_CHARS = 300
_KEY_HASH_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


# --- Exceptions --------------------------------------------------------------------------------


class OpenRouterError(Exception):
    """Anything that went wrong talking to OpenRouter. ``status_code`` is None without a response."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, message={self.message!r})"


class OpenRouterBadRequest(OpenRouterError):
    """400: the request was malformed (a bug on our side, not worth retrying)."""


class OpenRouterAuthError(OpenRouterError):
    """401: the management key is missing or wrong (configuration)."""


class OpenRouterPaymentRequired(OpenRouterError):
    """402: the OpenRouter account is out of credits; staff must top it up by hand."""


class OpenRouterForbidden(OpenRouterError):
    """403: the key may not do this (e.g. not a management key)."""


class OpenRouterNotFound(OpenRouterError):
    """404: unknown key hash or endpoint."""


class OpenRouterRateLimited(OpenRouterError):
    """429: slow down; ``retry_after`` seconds when the service said so."""

    def __init__(self, message: str, *, status_code: int | None = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class OpenRouterServerError(OpenRouterError):
    """5xx, or a response we could not understand: the provider's fault, usually transient."""


class OpenRouterNetworkError(OpenRouterError):
    """Timeout or connection failure: we do not know whether the request took effect."""


TRANSIENT_ERRORS = (OpenRouterRateLimited, OpenRouterServerError, OpenRouterNetworkError)

_STATUS_ERRORS: dict[int, type[OpenRouterError]] = {
    400: OpenRouterBadRequest,
    401: OpenRouterAuthError,
    402: OpenRouterPaymentRequired,
    403: OpenRouterForbidden,
    404: OpenRouterNotFound,
    422: OpenRouterBadRequest,
}


# --- Dataclasses -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueModel:
    """One entry of ``GET /models``. Prices are USD per token as OpenRouter wrote them.

    ``None`` means missing or unparseable; "0" (free) and "-1" (variable, routers) are kept as the
    Decimals 0 and -1 so the catalogue sync can tell why a model is not sellable.
    """

    id: str
    name: str
    context_length: int | None
    prompt_price: Decimal | None
    completion_price: Decimal | None
    request_price: Decimal | None = None


@dataclass(frozen=True)
class Credits:
    """``GET /credits``: everything ever bought and everything ever used, in USD."""

    total_credits: Decimal
    total_usage: Decimal

    @property
    def balance(self) -> Decimal:
        return self.total_credits - self.total_usage


@dataclass(frozen=True)
class KeyInfo:
    """The public data of one API key (never its plaintext)."""

    hash: str
    name: str
    label: str
    disabled: bool
    limit: Decimal | None
    limit_remaining: Decimal | None
    usage: Decimal
    created_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True)
class CreatedKey:
    """``POST /keys``: the only moment the plaintext key exists on the wire."""

    info: KeyInfo
    key: str = field(repr=False)


# --- Parsing helpers ---------------------------------------------------------------------------


def _decimal_or_none(value: Any) -> Decimal | None:
    """A finite Decimal from a JSON string or number; None for anything else."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 64:
            return None
        try:
            result = Decimal(text)
        except InvalidOperation:
            return None
    else:
        return None
    return result if result.is_finite() else None


def _datetime_or_none(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    if isinstance(value, Decimal) and value != value.to_integral_value():
        return None
    result = int(value)
    return result if result >= 0 else None


def _parse_model(item: Any) -> CatalogueModel | None:
    if not isinstance(item, dict):
        return None
    model_id = item.get("id")
    if not isinstance(model_id, str) or not model_id.strip():
        return None
    name = item.get("name")
    pricing = item.get("pricing")
    if not isinstance(pricing, dict):
        pricing = {}
    return CatalogueModel(
        id=model_id.strip(),
        name=name.strip() if isinstance(name, str) and name.strip() else model_id.strip(),
        context_length=_int_or_none(item.get("context_length")),
        prompt_price=_decimal_or_none(pricing.get("prompt")),
        completion_price=_decimal_or_none(pricing.get("completion")),
        request_price=_decimal_or_none(pricing.get("request")),
    )


def _format_expiry(expires_at: datetime) -> str:
    if expires_at.tzinfo is None or expires_at.utcoffset() is None:
        raise ValueError("expires_at must be timezone-aware")
    return expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_hash(key_hash: str) -> str:
    if not isinstance(key_hash, str) or not _KEY_HASH_RE.match(key_hash):
        raise ValueError("not a valid OpenRouter key hash")
    return quote(key_hash, safe="")


def _check_limit(limit: Decimal) -> Decimal:
    if not isinstance(limit, Decimal) or not limit.is_finite() or limit < 0:
        raise ValueError("limit must be a finite, non-negative Decimal (USD)")
    return limit


@dataclass(frozen=True)
class _Reply:
    status: int
    reason: str
    content: bytes
    retry_after: str | None


# --- The client --------------------------------------------------------------------------------


class OpenRouterClient(ServiceClient):
    """One OpenRouter account, reached over one ``requests.Session``."""

    def default_session(self) -> requests.Session:
        return requests.Session()

    def __repr__(self) -> str:
        return f"OpenRouterClient(base_url={self.base_url!r})"

    # Public API ---------------------------------------------------------------------------

    def list_models(self) -> list[CatalogueModel]:
        """``GET /models`` (no authentication). Malformed entries are skipped, never guessed at."""
        body = self._request("GET", "/models", authenticated=False)
        data = body.get("data")
        if not isinstance(data, list):
            raise OpenRouterServerError("GET /models: response has no `data` list", status_code=None)
        models = [parsed for parsed in (_parse_model(item) for item in data) if parsed is not None]
        skipped = len(data) - len(models)
        if skipped:
            logger.warning("openrouter_models_skipped count=%d reason=malformed entries", skipped)
        return models

    def get_credits(self) -> Credits:
        """``GET /credits``: the account's credits and usage (balance = credits − usage)."""
        body = self._request("GET", "/credits")
        data = body.get("data")
        if not isinstance(data, dict):
            raise OpenRouterServerError("GET /credits: response has no `data` object")
        total_credits = _decimal_or_none(data.get("total_credits"))
        total_usage = _decimal_or_none(data.get("total_usage"))
        if total_credits is None or total_usage is None:
            raise OpenRouterServerError("GET /credits: total_credits/total_usage missing or not numbers")
        return Credits(total_credits=total_credits, total_usage=total_usage)

    def create_key(self, *, name: str, limit: Decimal, expires_at: datetime | None = None) -> CreatedKey:
        """``POST /keys``: buys nothing by itself, but a key with a USD limit is spendable money.

        The limit never resets (``limit_reset: null``) and counts every kind of usage, so the key
        buys exactly what the limit says. Only the fulfilment service may call this.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a key needs a name")
        payload: dict[str, Any] = {
            "name": name,
            "limit": _check_limit(limit),
            "limit_reset": None,
            "include_byok_in_limit": True,
        }
        if expires_at is not None:
            payload["expires_at"] = _format_expiry(expires_at)
        body = self._request("POST", "/keys", payload=payload)
        key = body.get("key")
        info = self._key_info(body.get("data"), "POST /keys")
        if not isinstance(key, str) or not key:
            # The key exists remotely but we never saw it: the caller must treat this like a lost
            # response (delete the orphan by name, then try again).
            raise OpenRouterServerError("POST /keys: response carries no key")
        return CreatedKey(info=info, key=key)

    def get_key(self, key_hash: str) -> KeyInfo:
        """``GET /keys/{hash}``: usage, limit and state of one key."""
        body = self._request("GET", f"/keys/{_check_hash(key_hash)}")
        return self._key_info(body.get("data"), "GET /keys/{hash}")

    def list_keys(self, *, include_disabled: bool = True) -> list[KeyInfo]:
        """``GET /keys?offset=N``, every page (100 keys each) until a short page."""
        keys: list[KeyInfo] = []
        seen: set[str] = set()
        offset = 0
        for _page in range(_MAX_KEY_PAGES):
            params: dict[str, str | int] = {"offset": offset}
            if include_disabled:
                params["include_disabled"] = "true"
            body = self._request("GET", "/keys", params=params)
            data = body.get("data")
            if not isinstance(data, list):
                raise OpenRouterServerError("GET /keys: response has no `data` list")
            for item in data:
                info = self._key_info(item, "GET /keys")
                if info.hash not in seen:  # keys created between pages shift offsets
                    seen.add(info.hash)
                    keys.append(info)
            if len(data) < KEYS_PAGE_SIZE:
                return keys
            offset += len(data)
        raise OpenRouterServerError("GET /keys: too many pages; is `offset` being ignored?")

    def update_key(self, key_hash: str, *, disabled: bool | None = None, limit: Decimal | None = None) -> KeyInfo:
        """``PATCH /keys/{hash}``: disable a key or change its USD limit."""
        payload: dict[str, Any] = {}
        if disabled is not None:
            if not isinstance(disabled, bool):
                raise ValueError("disabled must be a bool")
            payload["disabled"] = disabled
        if limit is not None:
            payload["limit"] = _check_limit(limit)
        if not payload:
            raise ValueError("update_key needs disabled or limit")
        body = self._request("PATCH", f"/keys/{_check_hash(key_hash)}", payload=payload)
        return self._key_info(body.get("data"), "PATCH /keys/{hash}")

    def delete_key(self, key_hash: str) -> None:
        """``DELETE /keys/{hash}``: the key stops working for good."""
        body = self._request("DELETE", f"/keys/{_check_hash(key_hash)}")
        if body.get("deleted") is not True:
            raise OpenRouterServerError("DELETE /keys/{hash}: the service did not confirm the deletion")

    # Plumbing -----------------------------------------------------------------------------

    def _key_info(self, data: Any, what: str) -> KeyInfo:
        if not isinstance(data, dict):
            raise OpenRouterServerError(f"{what}: response has no key data")
        key_hash = data.get("hash")
        if not isinstance(key_hash, str) or not key_hash:
            raise OpenRouterServerError(f"{what}: key data has no hash")
        name, label = data.get("name"), data.get("label")
        return KeyInfo(
            hash=key_hash,
            name=name if isinstance(name, str) else "",
            label=label if isinstance(label, str) else "",  # already masked by OpenRouter
            disabled=data.get("disabled") is True,
            limit=_decimal_or_none(data.get("limit")),
            limit_remaining=_decimal_or_none(data.get("limit_remaining")),
            usage=_decimal_or_none(data.get("usage")) or Decimal(0),
            created_at=_datetime_or_none(data.get("created_at")),
            expires_at=_datetime_or_none(data.get("expires_at")),
        )

    def _scrub(self, text: str) -> str:
        """Remote text made safe for logs and exception messages: no key, one short line."""
        return scrub(text, (self._api_key,), max_chars=_MAX_MESSAGE_CHARS)

    def _request(
        self,
        method: str,
        path: str,
        *,
        authenticated: bool = True,
        params: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        what = f"{method} {path.split('?')[0]}"
        headers = {"Accept": "application/json"}
        if authenticated:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = None
        if payload is not None:
            headers["Content-Type"] = "application/json"
            data = json_dumps(payload)

        started = time.monotonic()
        reply = self._send(method, path, what=what, params=params, data=data, headers=headers)
        logger.info(
            "openrouter_call %s status=%s elapsed_ms=%.0f", what, reply.status, (time.monotonic() - started) * 1000
        )
        if 200 <= reply.status < 300:
            try:
                body = json_loads(reply.content)
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise OpenRouterServerError(f"{what}: response is not a JSON object", status_code=reply.status)
            return body
        raise self._error_for(reply, what)

    def _send(self, method: str, path: str, *, what: str, **kwargs: Any) -> _Reply:
        """One HTTP exchange, fully read and closed.

        Only plain data leaves this frame: an exception (and its traceback) never keeps a response,
        and with it a pooled socket, alive.
        """
        failure: OpenRouterError | None = None
        try:
            response = self.session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        except requests.exceptions.InvalidHeader:
            # requests quotes the offending header value (our key) in this message: drop it.
            failure = OpenRouterAuthError(f"{what}: the configured API key is not a valid header value")
        except requests.Timeout as exc:
            failure = OpenRouterNetworkError(f"{what}: timed out ({type(exc).__name__})")
        except requests.RequestException as exc:
            failure = OpenRouterNetworkError(f"{what}: connection failed ({type(exc).__name__})")
        if failure is not None:
            # Raised outside the except block so no requests exception rides along as context.
            logger.warning("openrouter_call %s failed: %s", what, failure.message)
            raise failure
        try:
            return _Reply(
                status=response.status_code,
                reason=response.reason or "",
                content=response.content,
                retry_after=response.headers.get("Retry-After"),
            )
        except requests.RequestException as exc:  # the body broke off half-way
            failure = OpenRouterNetworkError(f"{what}: reading the response failed ({type(exc).__name__})")
        finally:
            response.close()
        logger.warning("openrouter_call %s failed: %s", what, failure.message)
        raise failure

    def _error_for(self, reply: _Reply, what: str) -> OpenRouterError:
        status = reply.status
        message = reply.reason or "error"
        try:
            body = json_loads(reply.content)
        except ValueError:
            body = None
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                message = error["message"]
            elif isinstance(error, str):
                message = error
            elif isinstance(body.get("message"), str):
                message = body["message"]
        text = f"{what}: HTTP {status}: {self._scrub(message)}"
        logger.warning("openrouter_error %s", text)
        if status == 429:
            return OpenRouterRateLimited(text, retry_after=retry_after_seconds(reply.retry_after))
        if status >= 500:
            return OpenRouterServerError(text, status_code=status)
        return _STATUS_ERRORS.get(status, OpenRouterError)(text, status_code=status)


# --- Construction from settings ----------------------------------------------------------------

_sessions = threading.local()


def _shared_session() -> requests.Session:
    """One pooled session per thread and process (Celery forks; sockets must not be shared)."""
    session = getattr(_sessions, "session", None)
    if session is None or getattr(_sessions, "pid", None) != os.getpid():
        session = pooled_session()
        _sessions.session = session
        _sessions.pid = os.getpid()
    return session


def close_shared_session() -> None:
    """Close this thread's pooled connections (tests: a kept-alive socket pins a live-server thread)."""
    session = getattr(_sessions, "session", None)
    if session is not None:
        session.close()
        _sessions.session = None


def get_openrouter_client() -> OpenRouterClient:
    """A client configured from settings as they are *now* (tests and sandbox switch them)."""
    return OpenRouterClient(
        base_url=settings.OPENROUTER_API_URL,
        api_key=settings.OPENROUTER_API_KEY,
        timeout=settings.HTTP_TIMEOUT,
        session=_shared_session(),
    )
