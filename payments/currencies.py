"""The gateway's crypto currencies, described for people and for arithmetic.

KryptoExpress identifies a currency by a code that also names the network (`USDT_TRC20` is
Tether on TRON). Customers lose money when they send a token over the wrong network, so every
page shows `network` next to the amount. `decimals` is the number of decimal places amounts
are quoted in (what the customer types into a wallet), and every conversion rounds to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote

from django.conf import settings


@dataclass(frozen=True)
class Currency:
    """One gateway crypto code.

    `uri_scheme` is the BIP21-style scheme (`bitcoin:<address>?amount=<whole coins>`) wallets
    understand for this coin, or None when there is no such scheme (tokens, account chains):
    the payment page then encodes the bare address.
    """

    code: str
    name: str
    network: str
    decimals: int
    is_stable: bool
    uri_scheme: str | None = None
    label: str = ""

    @property
    def display_name(self) -> str:
        """What customers read: "Bitcoin", "USDT on TRON (TRC-20)" — never the gateway code."""
        return self.label or self.name

    @property
    def quantum(self) -> Decimal:
        """The smallest quoted amount, e.g. Decimal("0.00000001") for BTC."""
        return Decimal(1).scaleb(-self.decimals)

    @property
    def symbol(self) -> str:
        """The ticker people know (USDT for USDT_TRC20)."""
        return self.code.split("_", 1)[0]


_ALL = (
    Currency("BTC", "Bitcoin", "Bitcoin", 8, False, "bitcoin"),
    Currency("LTC", "Litecoin", "Litecoin", 8, False, "litecoin"),
    Currency("SOL", "Solana", "Solana", 9, False),
    Currency("TRX", "TRON", "TRON", 6, False),
    Currency("ETH", "Ether", "Ethereum", 8, False),
    Currency("BNB", "BNB", "BNB Smart Chain (BEP20)", 8, False),
    Currency("DOGE", "Dogecoin", "Dogecoin", 8, False, "dogecoin"),
    Currency("USDT_TRC20", "Tether USD", "USDT on TRON (TRC20)", 6, True, None, "USDT on TRON (TRC-20)"),
    Currency("USDT_ERC20", "Tether USD", "USDT on Ethereum (ERC20)", 6, True, None, "USDT on Ethereum (ERC-20)"),
    Currency(
        "USDT_BEP20", "Tether USD", "USDT on BNB Smart Chain (BEP20)", 6, True, None, "USDT on BNB Smart Chain (BEP-20)"
    ),
    Currency("USDT_SOL", "Tether USD", "USDT on Solana (SPL)", 6, True, None, "USDT on Solana (SPL)"),
    Currency("USDC_ERC20", "USD Coin", "USDC on Ethereum (ERC20)", 6, True, None, "USDC on Ethereum (ERC-20)"),
    Currency(
        "USDC_BEP20", "USD Coin", "USDC on BNB Smart Chain (BEP20)", 6, True, None, "USDC on BNB Smart Chain (BEP-20)"
    ),
    Currency("USDC_SOL", "USD Coin", "USDC on Solana (SPL)", 6, True, None, "USDC on Solana (SPL)"),
)

CURRENCIES: dict[str, Currency] = {currency.code: currency for currency in _ALL}
"""Every crypto code the gateway knows, in the gateway's documented order."""


def get_currency(code: object) -> Currency | None:
    """The currency for a gateway code, or None for anything else (unknown codes, non-strings)."""
    if not isinstance(code, str):
        return None
    return CURRENCIES.get(code)


def accepted_currencies() -> list[Currency]:
    """The currencies this store accepts, in `settings.PAYMENT_CURRENCIES` order.

    Read at call time so tests and staff configuration apply immediately; codes the gateway
    does not know are skipped rather than offered.
    """
    seen: set[str] = set()
    accepted = []
    for code in settings.PAYMENT_CURRENCIES:
        currency = get_currency(code.strip().upper())
        if currency is not None and currency.code not in seen:
            seen.add(currency.code)
            accepted.append(currency)
    return accepted


def payment_uri(*, code: str, address: str, amount: Decimal | None, label: str = "") -> str:
    """What the payment page's QR code encodes: a BIP21 URI where the coin has one, else the address.

    The amount is written in plain notation (never `1E-7`), exactly as quoted; `label` (BIP21's
    payee label, e.g. the order reference) is percent-encoded so wallets show it as typed.
    """
    currency = get_currency(code)
    if currency is None or currency.uri_scheme is None:
        return address
    params = []
    if amount is not None:
        params.append(f"amount={format_amount(amount)}")
    if label:
        params.append("label=" + quote(label, safe=""))
    return f"{currency.uri_scheme}:{address}" + ("?" + "&".join(params) if params else "")


def format_quoted(amount: Decimal, code: str) -> str:
    """An amount as the customer must send it: every decimal place of the currency, none dropped.

    "10.800000" for USDT on TRON, "0.00002227" for BTC. An amount with more places than the
    currency has (a gateway surprise) is shown in full rather than rounded.
    """
    currency = get_currency(code)
    if currency is None:
        return format_amount(amount)
    quantized = amount.quantize(currency.quantum)
    return format(quantized if quantized == amount else amount, "f")


def format_amount(amount: Decimal) -> str:
    """A crypto amount as people and wallets expect it: plain digits, no exponent, no trailing zeros."""
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
