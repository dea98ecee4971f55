"""Is this string an address funds can be sent to on this network? Checksums included.

Used before a refund is sent: a typo in an address is money gone, so an address is accepted only
when its encoding *and* checksum verify, on mainnet, on the network the order was paid on.

- Bitcoin: P2PKH (`1…`) and P2SH (`3…`) are Base58Check with version bytes 0x00 / 0x05;
  SegWit v0 (`bc1q…`) is bech32 (BIP 173) with a 20- or 32-byte program; Taproot (`bc1p…`) is
  SegWit v1 with a 32-byte program and the bech32m checksum (BIP 350). Other witness versions are
  valid in principle but no wallet uses them yet: refused, so nobody sends to an unspendable output.
- TRON (TRX and USDT on TRC20): Base58Check, 21 bytes starting with 0x41 (`T…`).

The encodings come from the reference `bech32` package (BIP 173's own code; its polymod and
hrp expansion also compute BIP 350's bech32m checksum, which differs only in the final constant)
and the `base58` package (Base58Check). Nothing here hand-rolls a checksum.

Messages are written for customers: they say what is wrong and what to give instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import base58
import bech32

MAX_ADDRESS_CHARS = 100  # the longest valid address here is 62 characters (bech32 v0/v1, 32 bytes)
BECH32M_CONST = 0x2BC830A3  # BIP 350
BECH32_CONST = 1  # BIP 173

BITCOIN = "bitcoin"
TRON = "tron"

NETWORK_LABELS = {BITCOIN: "Bitcoin", TRON: "TRON"}
_NETWORK_BY_CURRENCY = {"BTC": BITCOIN, "TRX": TRON, "USDT_TRC20": TRON}

# Version bytes of Base58Check addresses.
_BTC_P2PKH, _BTC_P2SH = 0x00, 0x05
_BTC_TESTNET_VERSIONS = frozenset({0x6F, 0xC4})
_TRON_PREFIX = 0x41


class AddressInvalid(ValueError):
    """The address cannot receive this refund. `str(exc)` is a message fit for the customer."""


@dataclass(frozen=True)
class RefundAddress:
    """A verified address: `address` is its canonical text (bech32 lower-cased), `kind` its type."""

    address: str
    network: str
    kind: str  # p2pkh | p2sh | p2wpkh | p2wsh | p2tr | tron


def refund_network(crypto_type: str) -> str | None:
    """The network refunds for `crypto_type` go out on, or None when refunds to it are not supported."""
    return _NETWORK_BY_CURRENCY.get(crypto_type)


def address_validate(*, crypto_type: str, address: object, own_addresses: tuple[str, ...] = ()) -> RefundAddress:
    """Check `address` for a refund of a payment made in `crypto_type`, or raise `AddressInvalid`.

    `own_addresses` are the store's own deposit addresses for the order: sending a refund there
    would pay the store, not the customer. Surrounding whitespace (a paste from a wallet) is
    forgiven; anything else that is not exactly an address is refused.
    """
    network = refund_network(crypto_type)
    if network is None:
        raise AddressInvalid("Refunds for this currency are handled by our staff directly; they will contact you.")
    if not isinstance(address, str):
        raise AddressInvalid("Enter an address.")
    text = address.strip()
    if not text:
        raise AddressInvalid("Enter an address.")
    if len(text) > MAX_ADDRESS_CHARS:
        raise AddressInvalid(f"That is too long to be a {NETWORK_LABELS[network]} address.")
    if any(ch.isspace() for ch in text) or not text.isascii() or not text.isprintable():
        raise AddressInvalid("An address has no spaces or special characters. Copy it again from your wallet.")
    verified = _bitcoin(text) if network == BITCOIN else _tron(text)
    own = {a.strip().lower() for a in own_addresses if a}
    if verified.address.lower() in own:
        raise AddressInvalid(
            "That is the store's payment address for this order. Enter an address of your own wallet."
        )
    return verified


# --- Bitcoin -------------------------------------------------------------------------------------


def _bitcoin(text: str) -> RefundAddress:
    lowered = text.lower()
    if lowered.startswith(("tb1", "bcrt1")) or text[:1] in ("m", "n", "2"):
        raise AddressInvalid("That is a Bitcoin testnet address. Enter a Bitcoin mainnet address.")
    if lowered.startswith("bc1"):
        return _bitcoin_segwit(text)
    if text[:1] in ("1", "3"):
        payload = _base58check(text, network=BITCOIN)
        if len(payload) != 21 or payload[0] not in (_BTC_P2PKH, _BTC_P2SH):
            raise AddressInvalid("That is not a Bitcoin address.")
        return RefundAddress(text, BITCOIN, "p2pkh" if payload[0] == _BTC_P2PKH else "p2sh")
    _refuse_other_network(text, expected=BITCOIN)
    raise AssertionError("unreachable")


def _bitcoin_segwit(text: str) -> RefundAddress:
    # BIP 173: all lower or all upper case; mixed case is invalid (a typo signal).
    if text != text.lower() and text != text.upper():
        raise AddressInvalid("That address mixes upper and lower case letters. Copy it again from your wallet.")
    lowered = text.lower()
    hrp, _, data_part = lowered.rpartition("1")
    if hrp != "bc" or len(lowered) > 90 or len(data_part) < 6 or any(ch not in bech32.CHARSET for ch in data_part):
        raise AddressInvalid("That is not a valid Bitcoin address. Check it for typos.")
    data = [bech32.CHARSET.find(ch) for ch in data_part]
    checksum = bech32.bech32_polymod(bech32.bech32_hrp_expand(hrp) + data)
    version = data[0]
    if version == 0:
        witver, program = bech32.decode("bc", lowered)  # BIP 173, bech32 checksum, program length
        if witver != 0 or program is None or checksum != BECH32_CONST:
            raise AddressInvalid("That Bitcoin address's checksum does not match. Check it for typos.")
        return RefundAddress(lowered, BITCOIN, "p2wpkh" if len(program) == 20 else "p2wsh")
    if version == 1:
        if checksum != BECH32M_CONST:
            raise AddressInvalid("That Bitcoin address's checksum does not match. Check it for typos.")
        program = bech32.convertbits(data[1:-6], 5, 8, False)
        if program is None or len(program) != 32:
            raise AddressInvalid("That is not a valid Bitcoin Taproot address.")
        return RefundAddress(lowered, BITCOIN, "p2tr")
    raise AddressInvalid(
        "That kind of Bitcoin address is not supported. Use an address starting with bc1q, bc1p, 1 or 3."
    )


# --- TRON ----------------------------------------------------------------------------------------


def _tron(text: str) -> RefundAddress:
    if not text.startswith("T"):
        _refuse_other_network(text, expected=TRON)
    payload = _base58check(text, network=TRON)
    if len(payload) != 21 or payload[0] != _TRON_PREFIX:
        raise AddressInvalid("That is not a TRON address.")
    return RefundAddress(text, TRON, "tron")


# --- Shared --------------------------------------------------------------------------------------


def _base58check(text: str, *, network: str) -> bytes:
    try:
        payload = base58.b58decode_check(text)
    except ValueError:
        raise AddressInvalid(
            f"That {NETWORK_LABELS[network]} address's checksum does not match. Check it for typos."
        ) from None
    if network == BITCOIN and payload[:1] and payload[0] in _BTC_TESTNET_VERSIONS:
        raise AddressInvalid("That is a Bitcoin testnet address. Enter a Bitcoin mainnet address.")
    return payload


def _refuse_other_network(text: str, *, expected: str) -> None:
    """Name the network the address seems to belong to, so the customer knows what went wrong."""
    lowered = text.lower()
    if lowered.startswith("0x"):
        seen = "an Ethereum-style (0x…) address"
    elif text.startswith("T") and expected != TRON:
        seen = "a TRON address"
    elif lowered.startswith("bc1") or text[:1] in ("1", "3"):
        seen = "a Bitcoin address"
    elif lowered.startswith(("ltc1", "l", "m")):
        seen = "not an address on this network (perhaps Litecoin?)"
    else:
        seen = "not an address on this network"
    raise AddressInvalid(f"This order was paid on {NETWORK_LABELS[expected]}; that is {seen}. "
                         f"Enter a {NETWORK_LABELS[expected]} address.")
