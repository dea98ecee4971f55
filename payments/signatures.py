"""KryptoExpress callback signatures (HMAC-SHA512, hex, in the `X-Signature` header).

The gateway signs the *compact* JSON of the callback body, as Python's
`json.dumps(json.loads(raw), separators=(",", ":"))` writes it. That re-serialization is not
the identity: `0.000012` becomes `1.2e-05` and `1.10` becomes `1.1`, while a signer that keeps
the original text signs the bytes it sent. So verification accepts a signature over the raw
body bytes or over the compact form, and compares in constant time either way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re

from payments.callbacks import MAX_CALLBACK_BYTES

SIGNATURE_RE = re.compile(r"^[0-9a-fA-F]{128}$")
"""An HMAC-SHA512 hex digest: 128 hex characters."""

MAX_SIGNED_BODY_BYTES = MAX_CALLBACK_BYTES
"""Bodies larger than the one callback limit are never verified (a callback is a small JSON object)."""


def hmac_sha512_hex(message: bytes, secret: str) -> str:
    """Hex HMAC-SHA512 of exactly these bytes."""
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha512).hexdigest()


def compact_json(body: bytes | str) -> bytes:
    """The gateway's canonical form of a JSON body (raises ValueError if it is not JSON)."""
    return json.dumps(json.loads(body), separators=(",", ":")).encode("utf-8")


def sign_body(body: bytes, secret: str) -> str:
    """The `X-Signature` the gateway sends for this body: HMAC-SHA512 of its compact JSON.

    Used by the sandbox to sign its callbacks and by tests; raises ValueError for a body that
    is not JSON.
    """
    return hmac_sha512_hex(compact_json(body), secret)


def verify_signature(*, raw_body: bytes, signature: str | None, secret: str) -> bool:
    """Whether `signature` is the gateway's signature of `raw_body` under `secret`.

    Checks the raw bytes first, then the compact re-serialization; true if either matches.
    Never raises: a missing, malformed or wrong signature, an empty secret, an oversized or
    non-JSON body all simply answer False.
    """
    try:
        if not isinstance(signature, str) or not SIGNATURE_RE.fullmatch(signature.strip()):
            return False
        if not isinstance(secret, str) or not secret:
            return False
        if isinstance(raw_body, str):
            raw_body = raw_body.encode("utf-8")
        if not isinstance(raw_body, bytes | bytearray | memoryview):
            return False
        raw = bytes(raw_body)
        if len(raw) > MAX_SIGNED_BODY_BYTES:
            return False
        expected_signature = signature.strip().lower()
        if hmac.compare_digest(hmac_sha512_hex(raw, secret), expected_signature):
            return True
        try:
            compact = compact_json(raw)
        except (ValueError, RecursionError):
            return False
        return hmac.compare_digest(hmac_sha512_hex(compact, secret), expected_signature)
    except Exception:  # a verifier that raises on hostile input is a vulnerability
        return False
