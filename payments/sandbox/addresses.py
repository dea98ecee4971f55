"""Deposit addresses that look like each network's (bc1q… for Bitcoin, T… for TRON, 0x… for EVM).

They have the right prefix, alphabet and length, but are random: no wallet will accept them
(checksums do not verify), which is exactly what a sandbox address should do if someone ever
tries to send real funds to it.
"""

from __future__ import annotations

import secrets

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
HEX = "0123456789abcdef"


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _network(code: str) -> str:
    if code in ("TRX", "USDT_TRC20"):
        return "tron"
    if code in ("ETH", "BNB", "USDT_ERC20", "USDT_BEP20", "USDC_ERC20", "USDC_BEP20"):
        return "evm"
    if code in ("SOL", "USDT_SOL", "USDC_SOL"):
        return "solana"
    return code.lower()


def sandbox_address(code: str) -> str:
    """A fresh, realistic-looking deposit address for gateway currency `code`."""
    network = _network(code)
    if network == "btc":
        return "bc1q" + _random(BECH32_CHARSET, 38)
    if network == "ltc":
        return "ltc1q" + _random(BECH32_CHARSET, 38)
    if network == "doge":
        return "D" + _random(BASE58_ALPHABET, 33)
    if network == "tron":
        return "T" + _random(BASE58_ALPHABET, 33)
    if network == "evm":
        return "0x" + _random(HEX, 40)
    if network == "solana":
        return _random(BASE58_ALPHABET, 44)
    raise ValueError(f"no address format for {code!r}")
