"""Keys and credits of the sandbox account, behaving like OpenRouter's provisioning API.

The plaintext key exists only in the return value of ``sandbox_key_create`` (and so only in the
``POST /keys`` response); the database keeps its SHA-256 as the key's ``hash``.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from openrouter.sandbox.models import SandboxAccount, SandboxFault, SandboxKey, SandboxModelOverride

PAGE_SIZE = 100
MAX_LIMIT = Decimal(10) ** 9
_USD_QUANTUM = Decimal("1e-8")
_LIMIT_RESETS = {"daily", "weekly", "monthly"}
_NAME_MAX = SandboxKey._meta.get_field("name").max_length


class SandboxInputError(ValueError):
    """The request is malformed (HTTP 400). The message is safe to show."""


class SandboxNoCredits(Exception):
    """The account has nothing left to spend (HTTP 402)."""


@dataclass(frozen=True)
class NewKey:
    key: SandboxKey
    plaintext: str


def key_digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def plain_number(value: Decimal | None) -> Decimal | int | None:
    """A Decimal as a tidy JSON number: 4.5 rather than 4.50000000, 100 rather than 1E+2."""
    if value is None:
        return None
    normalized = value.normalize()
    if normalized == normalized.to_integral_value():
        return int(normalized)
    return normalized


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


SANDBOX_WORKSPACE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://openrouter.ai/sandbox/workspace"))


def key_data(key: SandboxKey) -> dict[str, Any]:
    """The public view of a key, as OpenRouter returns it (``data`` of every /keys answer)."""
    usage = plain_number(key.usage)
    return {
        "hash": key.hash,
        "name": key.name,
        "label": key.label,
        "disabled": key.disabled,
        "limit": plain_number(key.limit),
        "limit_remaining": plain_number(key.limit_remaining),
        "limit_reset": key.limit_reset or None,
        "include_byok_in_limit": key.include_byok_in_limit,
        "usage": usage,
        "usage_daily": usage,
        "usage_weekly": usage,
        "usage_monthly": usage,
        "byok_usage": 0,
        "byok_usage_daily": 0,
        "byok_usage_weekly": 0,
        "byok_usage_monthly": 0,
        "created_at": _iso(key.created_at),
        "updated_at": _iso(key.updated_at),
        "expires_at": _iso(key.expires_at),
        # Present on every real key (the official SDK requires them): made by the management key,
        # for no external user, in the account's default workspace; never used in the sandbox
        # unless spend was simulated.
        "creator_user_id": None,
        "external_user": None,
        "last_used_at": _iso(key.updated_at) if key.usage else None,
        "workspace_id": SANDBOX_WORKSPACE_ID,
    }


# --- Input validation (the real service answers 400 to all of these) -----------------------------


def _usd(value: Any, what: str, *, allow_null: bool) -> Decimal | None:
    if value is None and allow_null:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise SandboxInputError(f"{what} must be a number")
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0 or amount >= MAX_LIMIT:
        raise SandboxInputError(f"{what} must be between 0 and {MAX_LIMIT}")
    return amount.quantize(_USD_QUANTUM, rounding=ROUND_DOWN)


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SandboxInputError("name is required")
    if len(value) > _NAME_MAX:
        raise SandboxInputError(f"name is longer than {_NAME_MAX} characters")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise SandboxInputError(f"{what} must be a boolean")
    return value


def _limit_reset(value: Any) -> str:
    if value is None:
        return ""
    if value not in _LIMIT_RESETS:
        raise SandboxInputError("limit_reset must be null, daily, weekly or monthly")
    return value


def _expiry(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise SandboxInputError("expires_at must be an ISO 8601 UTC timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SandboxInputError("expires_at must be an ISO 8601 UTC timestamp") from None
    if parsed.tzinfo is None or parsed.utcoffset().total_seconds() != 0:
        raise SandboxInputError("expires_at must be in UTC (end with Z)")
    if parsed <= timezone.now():
        raise SandboxInputError("expires_at must be in the future")
    return parsed


# --- Operations ---------------------------------------------------------------------------------


def sandbox_key_create(payload: dict[str, Any]) -> NewKey:
    """``POST /keys``: issue a key with an optional USD limit. 402 when the account is empty."""
    name = _name(payload.get("name"))
    limit = _usd(payload.get("limit"), "limit", allow_null=True)
    limit_reset = _limit_reset(payload.get("limit_reset"))
    include_byok = _bool(payload.get("include_byok_in_limit", False), "include_byok_in_limit")
    expires_at = _expiry(payload.get("expires_at"))
    account = SandboxAccount.load()
    if account.total_credits - account.total_usage <= 0:
        raise SandboxNoCredits("Insufficient credits. Add more using https://openrouter.ai/credits")
    plaintext = "sk-or-v1-" + secrets.token_hex(32)
    key = SandboxKey.objects.create(
        hash=key_digest(plaintext),
        name=name,
        label=f"{plaintext[:12]}...{plaintext[-3:]}",
        limit=limit,
        limit_reset=limit_reset,
        include_byok_in_limit=include_byok,
        expires_at=expires_at,
    )
    return NewKey(key=key, plaintext=plaintext)


def sandbox_keys_page(*, offset: int, include_disabled: bool) -> list[SandboxKey]:
    """``GET /keys?offset=N``: up to ``PAGE_SIZE`` keys, oldest first."""
    keys = SandboxKey.objects.all()
    if not include_disabled:
        keys = keys.filter(disabled=False)
    return list(keys.order_by("id")[offset : offset + PAGE_SIZE])


# What `PATCH /keys/{hash}` may change, each with the parser that checks its value (in this order).
_UPDATABLE: dict[str, Any] = {
    "name": _name,
    "disabled": lambda value: _bool(value, "disabled"),
    "limit": lambda value: _usd(value, "limit", allow_null=True),
    "limit_reset": _limit_reset,
    "include_byok_in_limit": lambda value: _bool(value, "include_byok_in_limit"),
}


def sandbox_key_update(key: SandboxKey, payload: dict[str, Any]) -> SandboxKey:
    """``PATCH /keys/{hash}``: name, disabled, limit, limit_reset, include_byok_in_limit."""
    fields = [name for name in _UPDATABLE if name in payload]
    for name in fields:
        setattr(key, name, _UPDATABLE[name](payload[name]))
    if not fields:
        raise SandboxInputError("nothing to update")
    key.updated_at = timezone.now()
    key.save(update_fields=[*fields, "updated_at"])
    return key


def simulate_spend(key_hash: str, usd: Decimal) -> Decimal:
    """Pretend the key's holder used ``usd`` worth of tokens; returns what was actually spent.

    Like OpenRouter, spending stops at the key's limit and a disabled or expired key spends
    nothing. The account's ``total_usage`` grows by the same amount.
    """
    if isinstance(usd, bool) or not isinstance(usd, int | Decimal) or not Decimal(usd).is_finite() or usd < 0:
        raise ValueError("usd must be a non-negative Decimal")
    with transaction.atomic():
        key = SandboxKey.objects.select_for_update().get(hash=key_hash)
        expired = key.expires_at is not None and key.expires_at <= timezone.now()
        if key.disabled or expired:
            return Decimal(0)
        spent = Decimal(usd).quantize(_USD_QUANTUM, rounding=ROUND_DOWN)
        if key.limit_remaining is not None:
            spent = min(spent, key.limit_remaining)
        if spent:
            SandboxKey.objects.filter(pk=key.pk).update(usage=F("usage") + spent, updated_at=timezone.now())
            SandboxAccount.load()
            SandboxAccount.objects.filter(pk=1).update(total_usage=F("total_usage") + spent)
    return spent


def sandbox_set_credits(*, total_credits: Decimal | None = None, total_usage: Decimal | None = None) -> SandboxAccount:
    """Top the sandbox account up (or drain it) for demos of 402 and the capacity guard."""
    account = SandboxAccount.load()
    if total_credits is not None:
        account.total_credits = total_credits
    if total_usage is not None:
        account.total_usage = total_usage
    account.save()
    return account


def sandbox_reset() -> None:
    """Forget every key, fault and catalogue override; the account returns to $100 unused."""
    with transaction.atomic():
        SandboxKey.objects.all().delete()
        SandboxFault.objects.all().delete()
        SandboxModelOverride.objects.all().delete()
        SandboxAccount.objects.all().delete()
        SandboxAccount.load()
