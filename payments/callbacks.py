"""Parsing a KryptoExpress callback body, defensively.

A callback is only a hint that payment `hash` changed: the store verifies its signature, then
re-reads the payment from the gateway and acts on that. So all this module extracts is which
payment to look at, and it refuses anything that is not a small JSON object naming one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal

MAX_CALLBACK_BYTES = 16 * 1024
"""The one callback size limit (the endpoint, the parser and the signature check all use it).

A gateway payment record is well under 2 KB; anything past this is refused unread."""

PAYMENT_HASH_RE = re.compile(r"^[A-Za-z0-9]{16,128}$")
"""The gateway's payment hashes are 64 hex characters; this accepts a sane superset."""


class InvalidCallback(ValueError):
    """The body is not a callback this store can act on. The message never quotes the body."""


@dataclass(frozen=True)
class CallbackPayload:
    """The payment a callback talks about."""

    payment_hash: str
    payment_id: int | None


def _refuse_constant(name: str) -> None:
    raise InvalidCallback(f"non-standard JSON constant {name[:10]!r}")


def parse_callback(raw_body: bytes) -> CallbackPayload:
    """Which payment a callback body names.

    Raises `InvalidCallback` for an oversized, empty, non-UTF-8 or non-JSON body, a JSON value
    that is not an object, or a missing / malformed `hash`. A malformed `id` is ignored (the
    hash is what identifies the payment).
    """
    if not isinstance(raw_body, bytes | bytearray | memoryview):
        raise InvalidCallback("callback body must be bytes")
    raw = bytes(raw_body)
    if len(raw) > MAX_CALLBACK_BYTES:
        raise InvalidCallback(f"callback body larger than {MAX_CALLBACK_BYTES} bytes")
    if not raw.strip():
        raise InvalidCallback("empty callback body")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except InvalidCallback:
        raise
    except (ValueError, RecursionError):
        raise InvalidCallback("callback body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidCallback("callback body is not a JSON object")
    payment_hash = data.get("hash")
    if not isinstance(payment_hash, str) or not PAYMENT_HASH_RE.fullmatch(payment_hash):
        raise InvalidCallback("callback has no valid payment hash")
    payment_id = data.get("id")
    if isinstance(payment_id, bool) or not isinstance(payment_id, int) or not 0 < payment_id < 2**63:
        payment_id = None
    return CallbackPayload(payment_hash=payment_hash, payment_id=payment_id)
