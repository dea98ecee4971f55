"""parse_callback: which payment a callback names, refusing everything hostile."""

from __future__ import annotations

import json

import pytest

from payments.callbacks import MAX_CALLBACK_BYTES, CallbackPayload, InvalidCallback, parse_callback

HASH = "adaeca287275d5589623a397fb4e35fac3aad7ba2ba9f7111e6df809df1e7474"


def test_valid_callback_gives_hash_and_id():
    body = json.dumps({"id": 638, "hash": HASH, "isPaid": True, "cryptoAmount": 0.00018486}).encode()
    assert parse_callback(body) == CallbackPayload(payment_hash=HASH, payment_id=638)


def test_pretty_printed_body_with_bom_free_whitespace_is_fine():
    body = b'\n  {\n "hash": "' + HASH.encode() + b'" }\n'
    assert parse_callback(body).payment_hash == HASH


@pytest.mark.parametrize("payment_id", ["638", 6.5, True, None, -1, 0, 2**70, [1]])
def test_malformed_id_is_ignored_not_fatal(payment_id):
    body = json.dumps({"id": payment_id, "hash": HASH}).encode()
    payload = parse_callback(body)
    assert payload.payment_hash == HASH
    assert payload.payment_id is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"null",
        b"[]",
        b'"just a string"',
        b"42",
        b"{not json}",
        b'{"hash": "' + HASH.encode() + b'"',  # truncated
        b"\xff\xfe{}",  # not UTF-8
        b'{"id": 1}',  # no hash
        b'{"hash": null}',
        b'{"hash": 123}',
        b'{"hash": ["' + HASH.encode() + b'"]}',
        b'{"hash": ""}',
        b'{"hash": "short"}',
        b'{"hash": "' + b"a" * 129 + b'"}',
        b'{"hash": "../../etc/passwd0000000"}',
        b'{"hash": "abc def ghi jkl mno pqr"}',
        b'{"hash": "' + HASH.encode() + b'\\n"}',
        b'{"hash": "\' OR 1=1 --aaaaaaaaaaaa"}',
        b'{"hash": "' + HASH.encode() + b'", "fiatAmount": NaN}',
        b'{"hash": "' + HASH.encode() + b'", "x": Infinity}',
        b"[" * 50_000 + b"]" * 50_000,
    ],
)
def test_hostile_bodies_are_refused(body):
    with pytest.raises(InvalidCallback):
        parse_callback(body)


def test_oversized_body_is_refused_before_parsing():
    body = b'{"hash": "' + HASH.encode() + b'", "pad": "' + b"x" * MAX_CALLBACK_BYTES + b'"}'
    with pytest.raises(InvalidCallback, match="larger than"):
        parse_callback(body)


def test_body_just_under_the_limit_is_accepted():
    prefix = b'{"hash": "' + HASH.encode() + b'", "pad": "'
    body = prefix + b"x" * (MAX_CALLBACK_BYTES - len(prefix) - 2) + b'"}'
    assert len(body) == MAX_CALLBACK_BYTES
    assert parse_callback(body).payment_hash == HASH


@pytest.mark.parametrize("body", [None, "a string", 123, {"hash": HASH}])
def test_non_bytes_input_is_refused(body):
    with pytest.raises(InvalidCallback):
        parse_callback(body)


def test_error_message_never_quotes_the_body():
    secret_looking = b'{"hash": "x", "callbackSecret": "topsecretvalue"}'
    with pytest.raises(InvalidCallback) as excinfo:
        parse_callback(secret_looking)
    assert "topsecretvalue" not in str(excinfo.value)


def test_one_callback_size_limit_everywhere():
    # The endpoint, the parser and the signature check refuse at the same size.
    from orders.views import callback as endpoint
    from payments import signatures

    assert endpoint.MAX_CALLBACK_BYTES == MAX_CALLBACK_BYTES == signatures.MAX_SIGNED_BODY_BYTES == 16 * 1024
    body = b'{"hash": "' + HASH.encode() + b'", "pad": "' + b"x" * (20 * 1024) + b'"}'
    secret = "per-order-secret"
    signature = signatures.hmac_sha512_hex(body, secret)
    assert not signatures.verify_signature(raw_body=body, signature=signature, secret=secret)
    with pytest.raises(InvalidCallback):
        parse_callback(body)
