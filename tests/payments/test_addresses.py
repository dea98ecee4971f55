"""Refund address validation: a hostile table per network, checksums included."""

from __future__ import annotations

import base58
import bech32
import pytest

from payments.addresses import AddressInvalid, address_validate

# Published vectors (BIP 173 / BIP 350 / the genesis block / BIP 13) and TRON's USDT contract.
P2PKH = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
P2SH = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"
P2WPKH = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
P2WSH = "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3"
P2TR = "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"
TRON = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
PROGRAM = bytes(range(32))
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def flip(address: str, position: int = -3) -> str:
    """One character changed inside the same alphabet: a typo the checksum must catch."""
    ch = address[position]
    alphabet = bech32.CHARSET if address.lower().startswith("bc1") else BASE58
    replacement = alphabet[(alphabet.index(ch) + 1) % len(alphabet)]
    return address[:position] + replacement + address[position + 1 :] if position != -1 else address[:-1] + replacement


def bech32_with_wrong_constant(version: int, program: bytes) -> str:
    """A v1 program written with the v0 (bech32) checksum — what BIP 350 exists to refuse."""
    return bech32.bech32_encode("bc", [version, *bech32.convertbits(program, 8, 5)])


def bech32m(version: int, program: bytes, hrp: str = "bc") -> str:
    data = [version, *bech32.convertbits(program, 8, 5)]
    polymod = bech32.bech32_polymod(bech32.bech32_hrp_expand(hrp) + data + [0] * 6) ^ 0x2BC830A3
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(bech32.CHARSET[d] for d in data + checksum)


VALID = [
    ("BTC", P2PKH, "p2pkh", P2PKH),
    ("BTC", P2SH, "p2sh", P2SH),
    ("BTC", P2WPKH, "p2wpkh", P2WPKH),
    ("BTC", P2WPKH.upper(), "p2wpkh", P2WPKH),  # all-caps bech32 is valid (QR codes); stored lower case
    ("BTC", P2WSH, "p2wsh", P2WSH),
    ("BTC", P2TR, "p2tr", P2TR),
    ("BTC", bech32m(1, PROGRAM), "p2tr", bech32m(1, PROGRAM)),
    ("BTC", f"  {P2WPKH}\n", "p2wpkh", P2WPKH),  # a paste with surrounding whitespace
    ("BTC", base58.b58encode_check(b"\x00" + bytes(20)).decode(), "p2pkh", None),
    ("USDT_TRC20", TRON, "tron", TRON),
    ("TRX", TRON, "tron", TRON),
    ("USDT_TRC20", base58.b58encode_check(b"\x41" + bytes(range(20))).decode(), "tron", None),
]


@pytest.mark.parametrize(("code", "address", "kind", "canonical"), VALID)
def test_valid_addresses_are_accepted_in_canonical_form(code, address, kind, canonical):
    verified = address_validate(crypto_type=code, address=address)
    assert verified.kind == kind
    assert verified.address == (canonical or address.strip())


INVALID = [
    # (currency, address, words the message must contain)
    ("BTC", flip(P2PKH), "checksum"),
    ("BTC", flip(P2SH), "checksum"),
    ("BTC", flip(P2WPKH), "checksum"),
    ("BTC", flip(P2WSH), "checksum"),
    ("BTC", flip(P2TR), "checksum"),
    ("BTC", bech32_with_wrong_constant(1, PROGRAM), "checksum"),  # taproot with a bech32 checksum
    ("BTC", bech32m(0, bytes(20)), "checksum"),  # v0 with a bech32m checksum
    ("BTC", bech32m(1, bytes(20)), "Taproot"),  # v1 must carry 32 bytes
    ("BTC", bech32m(2, bytes(32)), "not supported"),  # future witness versions: unspendable today
    ("BTC", "bc1qW508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "mixes upper and lower"),
    ("BTC", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", "testnet"),
    ("BTC", "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", "testnet"),
    ("BTC", "2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc", "testnet"),
    ("BTC", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "testnet"),
    ("BTC", base58.b58encode_check(b"\x6f" + bytes(20)).decode(), "testnet"),
    ("BTC", TRON, "TRON address"),
    ("BTC", "0x52908400098527886E0F7030069857D2E4169EE7", "Ethereum"),
    ("BTC", "ltc1qg82tj3dc2z5ef7s3cewpv3xqmfqt2ehw6kzmyl", "Litecoin"),
    ("BTC", "bc1q w508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "no spaces"),
    ("BTC", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4\u200b", "special characters"),
    ("BTC", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4\x00", "special characters"),
    ("BTC", "bc1qw5b8d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "not a valid"),  # "b" is outside bech32
    ("BTC", "1" * 10_000, "too long"),
    ("BTC", "", "Enter an address"),
    ("BTC", "   \t\n", "Enter an address"),
    ("BTC", "<script>alert(1)</script>", "not an address"),
    ("BTC", "'; DROP TABLE orders; --", "no spaces"),
    ("USDT_TRC20", P2WPKH, "Bitcoin address"),
    ("USDT_TRC20", P2PKH, "Bitcoin address"),
    ("USDT_TRC20", flip(TRON), "checksum"),
    ("USDT_TRC20", TRON.lower(), "not an address"),
    ("USDT_TRC20", base58.b58encode_check(b"\x42" + bytes(20)).decode(), "not a TRON"),
    ("USDT_TRC20", base58.b58encode_check(b"\x41" + bytes(19)).decode(), "not an address"),
    ("USDT_TRC20", "0x52908400098527886E0F7030069857D2E4169EE7", "Ethereum"),
    ("USDT_TRC20", "T" * 10_000, "too long"),
    ("ETH", "0x52908400098527886E0F7030069857D2E4169EE7", "staff"),  # no automatic refunds there
]


@pytest.mark.parametrize(("code", "address", "message"), INVALID)
def test_invalid_addresses_are_refused_with_a_clear_message(code, address, message):
    with pytest.raises(AddressInvalid) as excinfo:
        address_validate(crypto_type=code, address=address)
    assert message.lower() in str(excinfo.value).lower()
    assert len(str(excinfo.value)) < 200  # a message, not an echo of a 10 kB input


@pytest.mark.parametrize("value", [None, 12345, b"bc1q", ["bc1q"]])
def test_non_strings_are_refused(value):
    with pytest.raises(AddressInvalid):
        address_validate(crypto_type="BTC", address=value)


@pytest.mark.parametrize("own", [P2WPKH, P2WPKH.upper(), f" {P2WPKH} "])
def test_the_stores_own_deposit_address_is_refused(own):
    with pytest.raises(AddressInvalid, match="store's payment address"):
        address_validate(crypto_type="BTC", address=P2WPKH, own_addresses=(own,))


def test_every_single_character_typo_in_a_taproot_address_is_caught():
    # bech32m guarantees detection of any single substitution
    data_start = len("bc1")
    for position in range(data_start, len(P2TR)):
        for ch in bech32.CHARSET:
            if ch == P2TR[position]:
                continue
            typo = P2TR[:position] + ch + P2TR[position + 1 :]
            with pytest.raises(AddressInvalid):
                address_validate(crypto_type="BTC", address=typo)
