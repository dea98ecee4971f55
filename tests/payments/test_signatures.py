"""Callback signatures: the gateway's published vector, tampering, and the re-serialization pitfall."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from payments.signatures import compact_json, hmac_sha512_hex, sign_body, verify_signature

# The gateway documentation's example, verbatim (whitespace included: it is compacted before signing).
PUBLISHED_SECRET = "1234567890"
PUBLISHED_BODY = b"""{
  "id": 638,
  "paymentType": "DEPOSIT",
  "fiatCurrency": "USD",
  "fiatAmount": 16.31,
  "cryptoAmount": 0.00018486,
  "userId": "fa92a3e0-48c0-44db-9d59-213ca94a14c3",
  "cryptoCurrency": "BTC",
  "expireDatetime": 1745252847543,
  "createDatetime": 1745245647543,
  "address": "bc1qxquy5w247rw0natp4ts4nz9agm4s9z24p0tl7u",
  "isPaid": true,
  "isWithdrawn": false,
  "hash": "adaeca287275d5589623a397fb4e35fac3aad7ba2ba9f7111e6df809df1e7474",
  "callbackUrl": "https://google.com/event"
}"""
PUBLISHED_SIGNATURE = (
    "d5633ea456a3fd3e47798f7effe0082ad9d98e667a6c159e1e5eafa06e72e3dd"
    "aa0b847859221a4f6fc86b6af322da2ff3869db32cc545f1f91cc300ae3b05db"
)


def test_published_vector_verifies():
    assert verify_signature(raw_body=PUBLISHED_BODY, signature=PUBLISHED_SIGNATURE, secret=PUBLISHED_SECRET)


def test_published_vector_is_what_sign_body_produces():
    assert sign_body(PUBLISHED_BODY, PUBLISHED_SECRET) == PUBLISHED_SIGNATURE


def test_published_vector_signature_is_case_insensitive():
    assert verify_signature(raw_body=PUBLISHED_BODY, signature=PUBLISHED_SIGNATURE.upper(), secret=PUBLISHED_SECRET)


def test_wrong_secret_fails():
    assert not verify_signature(raw_body=PUBLISHED_BODY, signature=PUBLISHED_SIGNATURE, secret="1234567891")


def _meaningful_positions(body: bytes) -> list[int]:
    """Positions whose change alters the JSON's content (whitespace between tokens is compacted away)."""
    positions = []
    in_string = False
    for index, byte in enumerate(body):
        char = chr(byte)
        if char == '"':
            in_string = not in_string
        if in_string or not char.isspace():
            positions.append(index)
    return positions


def test_every_changed_byte_fails():
    # given: each meaningful byte of the published body, changed in turn
    positions = _meaningful_positions(PUBLISHED_BODY)
    assert len(positions) > 400
    for index in positions:
        original = PUBLISHED_BODY[index]
        replacement = ord("7") if original != ord("7") else ord("8")
        if chr(original) in '"{}:,':
            replacement = ord("x")
        tampered = PUBLISHED_BODY[:index] + bytes([replacement]) + PUBLISHED_BODY[index + 1 :]
        # then: no tampered body carries the published signature
        assert not verify_signature(raw_body=tampered, signature=PUBLISHED_SIGNATURE, secret=PUBLISHED_SECRET), index


def test_every_changed_signature_character_fails():
    for index in range(len(PUBLISHED_SIGNATURE)):
        char = PUBLISHED_SIGNATURE[index]
        flipped = "0" if char != "0" else "1"
        signature = PUBLISHED_SIGNATURE[:index] + flipped + PUBLISHED_SIGNATURE[index + 1 :]
        assert not verify_signature(raw_body=PUBLISHED_BODY, signature=signature, secret=PUBLISHED_SECRET)


def test_paid_flag_flipped_fails():
    tampered = PUBLISHED_BODY.replace(b'"isPaid": true', b'"isPaid": false')
    assert tampered != PUBLISHED_BODY
    assert not verify_signature(raw_body=tampered, signature=PUBLISHED_SIGNATURE, secret=PUBLISHED_SECRET)


def test_raw_body_signed_over_its_own_bytes_verifies_although_compaction_differs():
    # given: a signer that signs the bytes it sends, with a number Python re-serializes differently
    raw = b'{"id":1,"cryptoAmount":0.000012,"fiatAmount":1.10,"hash":"abc"}'
    assert compact_json(raw) != raw  # 0.000012 -> 1.2e-05, 1.10 -> 1.1
    signature = hmac.new(b"secret", raw, hashlib.sha512).hexdigest()
    # then
    assert verify_signature(raw_body=raw, signature=signature, secret="secret")
    assert not verify_signature(raw_body=raw, signature=signature, secret="other")


def test_compact_only_signature_verifies_for_a_pretty_body():
    # given: a pretty-printed body whose signature covers only the Python-compact form
    raw = b'{\n  "id": 5,\n  "cryptoAmount": 0.00001547,\n  "hash": "abc"\n}'
    compact = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    assert compact == b'{"id":5,"cryptoAmount":1.547e-05,"hash":"abc"}'
    signature = hmac.new(b"s3cret", compact, hashlib.sha512).hexdigest()
    # then
    assert verify_signature(raw_body=raw, signature=signature, secret="s3cret")
    assert sign_body(raw, "s3cret") == signature


def test_compact_form_uses_ascii_escapes():
    raw = '{"name":"Zoë"}'.encode()
    assert compact_json(raw) == b'{"name":"Zo\\u00eb"}'
    signature = hmac_sha512_hex(b'{"name":"Zo\\u00eb"}', "k")
    assert verify_signature(raw_body=raw, signature=signature, secret="k")


@pytest.mark.parametrize(
    "signature",
    [None, "", "   ", "not-hex", "0" * 127, "0" * 129, "g" * 128, 12345, b"0" * 128, ["a"], "é" * 128],
)
def test_garbage_signature_is_false(signature):
    assert verify_signature(raw_body=PUBLISHED_BODY, signature=signature, secret=PUBLISHED_SECRET) is False


@pytest.mark.parametrize(
    "raw_body",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[" * 60_000,
        b"[" * 100_000,
        b"{" + b'"a":1,' * 20_000 + b'"b":2}',
        None,
        42,
        object(),
    ],
)
def test_garbage_body_is_false_and_never_raises(raw_body):
    assert verify_signature(raw_body=raw_body, signature="a" * 128, secret="secret") is False


def test_empty_or_missing_secret_is_false():
    # An HMAC under an empty key is computable; accepting it would make a misconfigured order forgeable.
    raw = b'{"hash":"abc"}'
    signature = hmac_sha512_hex(raw, "")
    assert verify_signature(raw_body=raw, signature=signature, secret="") is False
    assert verify_signature(raw_body=raw, signature=signature, secret=None) is False


def test_oversized_body_is_false_even_if_signed():
    raw = b'{"hash":"abc","pad":"' + b"x" * 70_000 + b'"}'
    signature = hmac_sha512_hex(raw, "k")
    assert verify_signature(raw_body=raw, signature=signature, secret="k") is False


def test_verify_uses_constant_time_comparison(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("payments.signatures.hmac.compare_digest", spy)
    assert verify_signature(raw_body=PUBLISHED_BODY, signature=PUBLISHED_SIGNATURE, secret=PUBLISHED_SECRET)
    assert calls  # the raw comparison, then the compact one


def test_sign_body_refuses_non_json():
    with pytest.raises(ValueError):
        sign_body(b"nope", "k")
