"""The imitation gateway's wallet: balances and withdrawals (`GET /wallet`, `POST /wallet/withdrawal`).

Like the real gateway: `SINGLE` sends one paid payment's funds and flips its `isWithdrawn`; a
payment already withdrawn is refused (400); `ALL` sends every unwithdrawn paid payment of a
currency; `onlyCalculate` returns the same figures and changes nothing. Fees are realistic per
currency: a flat network (blockchain) fee plus a 0.5% service fee, rounded up to the currency's
decimals; the recipient gets the rest. Addresses are checked for the currency's network format.

Fault injection (for tests and demos) is a small cache entry: `error_500` answers 500 without
doing anything; `timeout_after` performs the withdrawal, commits it, then sleeps past the
client's read timeout so the answer is lost — the case the store must never resend.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Sum

from payments.addresses import AddressInvalid, address_validate, refund_network
from payments.client import datetime_to_ms
from payments.currencies import CURRENCIES, get_currency
from payments.sandbox.gateway import SandboxValidationError, _now_ms, plain_decimal
from payments.sandbox.models import SandboxPayment, SandboxWithdrawal

NETWORK_FEES: dict[str, Decimal] = {
    "BTC": Decimal("0.0000035"),  # ~140 vB at ~2.5 sat/vB
    "LTC": Decimal("0.0001"),
    "SOL": Decimal("0.000005"),
    "TRX": Decimal("1.1"),
    "ETH": Decimal("0.0004"),
    "BNB": Decimal("0.0002"),
    "DOGE": Decimal("1"),
    "USDT_TRC20": Decimal("1"),  # TRC20 transfers burn energy; gateways charge about 1 USDT
    "USDT_ERC20": Decimal("3"),
    "USDT_BEP20": Decimal("0.3"),
    "USDT_SOL": Decimal("0.1"),
    "USDC_ERC20": Decimal("3"),
    "USDC_BEP20": Decimal("0.3"),
    "USDC_SOL": Decimal("0.1"),
}
"""Flat blockchain fee per withdrawal, in units of the currency."""

SERVICE_FEE_RATE = Decimal("0.005")
FAULT_CACHE_KEY = "sandbox:kryptoexpress:wallet-fault"
FAULTS = {"error_500": "Answer 500 (nothing sent)", "timeout_after": "Send the funds, then lose the answer"}

# Valid mainnet addresses (checksums verify) for trying refunds in the sandbox.
SAMPLE_REFUND_ADDRESSES: dict[str, tuple[str, ...]] = {
    "bitcoin": (
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
        "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
    ),
    "tron": ("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7"),
}


@dataclass(frozen=True)
class WithdrawalFigures:
    total: Decimal
    blockchain_fee: Decimal
    service_fee: Decimal
    receiving: Decimal


class WithdrawalRefused(Exception):
    """The gateway refuses the withdrawal (400) — nothing was sent."""


class InjectedFault(Exception):
    """A fault the sandbox was asked to inject (500)."""


def fault_set(*, mode: str | None, count: int = 1) -> None:
    """Inject `mode` into the next `count` real withdrawals (None clears it)."""
    if mode is None:
        cache.delete(FAULT_CACHE_KEY)
        return
    if mode not in FAULTS:
        raise ValueError(f"unknown fault {mode!r}")
    cache.set(FAULT_CACHE_KEY, {"mode": mode, "remaining": count}, timeout=3600)


def _take_fault() -> str | None:
    fault = cache.get(FAULT_CACHE_KEY)
    if not fault or fault.get("remaining", 0) <= 0:
        return None
    remaining = fault["remaining"] - 1
    if remaining > 0:
        cache.set(FAULT_CACHE_KEY, {**fault, "remaining": remaining}, timeout=3600)
    else:
        cache.delete(FAULT_CACHE_KEY)
    return fault["mode"]


def wallet_balances() -> dict[str, Decimal]:
    """`GET /wallet`: funds of paid payments not yet withdrawn, per currency (0 for none)."""
    rows = (
        SandboxPayment.objects.filter(is_paid=True, is_withdrawn=False)
        .values("crypto_currency")
        .annotate(total=Sum("crypto_amount"))
    )
    balances = {code: Decimal("0") for code in CURRENCIES}
    for row in rows:
        balances[row["crypto_currency"]] = plain_decimal(row["total"] or Decimal("0"))
    return balances


def withdrawal_figures(*, code: str, total: Decimal) -> WithdrawalFigures:
    """Fees and what the recipient gets for withdrawing `total` of `code`."""
    quantum = get_currency(code).quantum  # type: ignore[union-attr]
    network_fee = NETWORK_FEES[code].quantize(quantum, rounding=ROUND_UP)
    service_fee = (total * SERVICE_FEE_RATE).quantize(quantum, rounding=ROUND_UP)
    return WithdrawalFigures(total, network_fee, service_fee, total - network_fee - service_fee)


def _validate(payload: object) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise SandboxValidationError([{"field": "body", "message": "Request body must be a JSON object"}])
    details: list[dict[str, str]] = []
    kind = payload.get("withdrawType")
    if kind not in ("SINGLE", "ALL"):
        details.append({"field": "withdrawType", "message": "withdrawType must be SINGLE or ALL"})
    code = payload.get("cryptoCurrency")
    if code not in CURRENCIES:
        details.append({"field": "cryptoCurrency", "message": "Unsupported cryptoCurrency"})
    only_calculate = payload.get("onlyCalculate", False)
    if not isinstance(only_calculate, bool):
        details.append({"field": "onlyCalculate", "message": "onlyCalculate must be a boolean"})
    payment_id = payload.get("paymentId")
    if kind == "SINGLE" and (isinstance(payment_id, bool) or not isinstance(payment_id, int)):
        details.append({"field": "paymentId", "message": "paymentId is required for SINGLE"})
    address = payload.get("toAddress")
    if not isinstance(address, str) or not address or len(address) > 128:
        details.append({"field": "toAddress", "message": "toAddress is required"})
    elif code in CURRENCIES and refund_network(code):
        try:
            address = address_validate(crypto_type=code, address=address).address
        except AddressInvalid:
            details.append({"field": "toAddress", "message": f"toAddress is not a valid {code} address"})
    if details:
        raise SandboxValidationError(details)
    return {"kind": kind, "code": code, "only_calculate": only_calculate, "payment_id": payment_id, "address": address}


def _answer(*, kind: str, code: str, address: str, payment_id: int | None, figures: WithdrawalFigures,
            only_calculate: bool, withdrawal: SandboxWithdrawal | None, now) -> dict[str, Any]:
    return {
        "id": withdrawal.pk if withdrawal else None,
        "withdrawType": kind,
        "paymentId": payment_id,
        "cryptoCurrency": code,
        "toAddress": address,
        "txIdList": list(withdrawal.tx_ids) if withdrawal else [],
        "receivingAmount": plain_decimal(figures.receiving),
        "blockchainFeeAmount": plain_decimal(figures.blockchain_fee),
        "serviceFeeAmount": plain_decimal(figures.service_fee),
        "onlyCalculate": only_calculate,
        "totalWithdrawalAmount": plain_decimal(figures.total),
        "createDatetime": datetime_to_ms(now),
    }


def sandbox_withdraw(*, payload: object) -> dict[str, Any]:
    """`POST /wallet/withdrawal`; raises SandboxValidationError / WithdrawalRefused / InjectedFault.

    A real withdrawal locks the payment rows, so two concurrent requests for one payment send
    once: the second sees `is_withdrawn` and is refused.
    """
    request = _validate(payload)
    kind, code, only_calculate = request["kind"], request["code"], request["only_calculate"]
    fault = None if only_calculate else _take_fault()
    if fault == "error_500":
        raise InjectedFault("injected gateway fault")
    now = _now_ms()
    with transaction.atomic():
        payments = SandboxPayment.objects.select_for_update().filter(crypto_currency=code, is_paid=True)
        if kind == "SINGLE":
            payment = SandboxPayment.objects.select_for_update().filter(pk=request["payment_id"]).first()
            if payment is None:
                raise WithdrawalRefused("Payment not found")
            if payment.crypto_currency != code:
                raise WithdrawalRefused("cryptoCurrency does not match the payment")
            if not payment.is_paid:
                raise WithdrawalRefused("Payment is not paid")
            if payment.is_withdrawn:
                raise WithdrawalRefused("Payment is already withdrawn")
            chosen = [payment]
        else:
            chosen = list(payments.filter(is_withdrawn=False).order_by("pk"))
        total = sum((p.crypto_amount or Decimal("0") for p in chosen), Decimal("0"))
        if total <= 0:
            raise WithdrawalRefused("Nothing to withdraw")
        figures = withdrawal_figures(code=code, total=total)
        if figures.receiving <= 0:
            raise WithdrawalRefused("Amount is too small to cover the fees")
        withdrawal = None
        if not only_calculate:
            withdrawal = SandboxWithdrawal.objects.create(
                withdraw_type=kind,
                payment=chosen[0] if kind == "SINGLE" else None,
                crypto_currency=code,
                to_address=request["address"],
                tx_ids=[secrets.token_hex(32)],
                receiving_amount=figures.receiving,
                blockchain_fee_amount=figures.blockchain_fee,
                service_fee_amount=figures.service_fee,
                total_withdrawal_amount=figures.total,
                created_at=now,
            )
            SandboxPayment.objects.filter(pk__in=[p.pk for p in chosen]).update(is_withdrawn=True)
    if fault == "timeout_after":
        # The funds are gone; the caller's answer is not (it gives up at its read timeout).
        time.sleep(float(getattr(settings, "SANDBOX_WALLET_LOST_ANSWER_SECONDS", 20.0)))
    return _answer(
        kind=kind, code=code, address=request["address"],
        payment_id=request["payment_id"] if kind == "SINGLE" else None,
        figures=figures, only_calculate=only_calculate, withdrawal=withdrawal, now=now,
    )
