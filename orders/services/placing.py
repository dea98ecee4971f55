"""Placing an order: turn a quote the customer confirmed into an order with a gateway payment.

Why it is shaped this way:
- The browser's price is never trusted: the quote is recomputed here from the catalogue, and
  if it differs from what the customer saw, they confirm the new price first (`QuoteChanged`).
- A double-click must not create two orders or two gateway payments. The order row is written
  first, in a short transaction, under the unique (user, idempotency_key) constraint: only
  one request can own the key; any other request with the same key waits for that order.
- No database transaction stays open during the HTTP call to the gateway. If the gateway is
  down or refuses, the row (which nobody has seen yet: it has no payment) is deleted, so no
  half-made order is left and the customer can simply try again with the same form.

Why this module is long: the placement story (idempotency, re-quote, capacity, gateway call,
clean-up) is one transaction boundary and is easier to audit unsplit.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.urls import reverse

from openrouter.models import AIModel
from orders.customer_mail import PLACED, customer_mail_enqueue
from orders.models import AITokenOrder, EventSource, OrderStatus
from orders.pricing import Quote, quote, rules_from_settings
from orders.services.capacity import CapacityUnavailable, capacity_balance_prefetch, ensure_capacity
from orders.services.capacity_lock import capacity_lock
from orders.services.payment_updates import payment_record_details
from orders.services.top_up import TopUpRefused, top_up_key_order
from orders.services.transitions import order_record_event
from payments.client import KryptoExpressError, PaymentRecord, get_kryptoexpress_client
from payments.currencies import accepted_currencies, format_amount, get_currency
from payments.rates import cached_rates, usd_to_crypto
from storefront.encryption import encrypt

logger = logging.getLogger("orders.placing")

GATEWAY_UNAVAILABLE_MESSAGE = (
    "We couldn't set up the crypto payment right now. Nothing was charged and no order was made; "
    "please try again in a few minutes."
)
CAPACITY_UNAVAILABLE_MESSAGE = (
    "Ordering is temporarily unavailable. Nothing was charged; please try again a little later."
)
MODEL_UNAVAILABLE_MESSAGE = "That model is not available to order. Please pick another one."
# How long a duplicate submission waits for the first one to finish talking to the gateway.
DUPLICATE_WAIT_SECONDS = 20.0
DUPLICATE_WAIT_STEP = 0.1


class CheckoutError(Exception):
    """Base class: checkout did not produce an order."""


class OrderRejected(CheckoutError):
    """The order is not valid; `messages` say why, in words a customer understands."""

    def __init__(self, messages: list[str] | tuple[str, ...]):
        self.messages = tuple(messages)
        super().__init__("; ".join(self.messages))


class QuoteChanged(CheckoutError):
    """The server's price differs from the one the customer saw: ask them to confirm `quote`."""

    def __init__(self, quote: Quote):
        self.quote = quote
        super().__init__(f"price is now {quote.total_usd_cost}")


class CheckoutUnavailable(CheckoutError):
    """Checkout cannot take orders right now (gateway or capacity); nothing was charged."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class CurrencyPreview:
    """One accepted currency with the amount the total would be at the cached rate (None: no rate)."""

    code: str
    name: str
    network: str
    amount: Decimal | None

    @property
    def display(self) -> str:
        """The amount as wallets show it ("0.00001114", "1.08"), with the currency's symbol."""
        if self.amount is None:
            return ""
        currency = get_currency(self.code)
        return f"{format_amount(self.amount)} {currency.symbol if currency else self.code}"


@dataclass(frozen=True)
class CheckoutPreview:
    """What the review page shows: the server's quote and what each accepted crypto would cost."""

    ai_model: AIModel | None
    quote: Quote | None
    currencies: tuple[CurrencyPreview, ...]
    errors: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return self.quote is not None and self.quote.valid and not self.errors


def checkout_preview(*, model_id: str, token_count: int) -> CheckoutPreview:
    """The quote as checkout will charge it, with crypto previews from cached rates (no remote call)."""
    currencies = tuple(
        CurrencyPreview(code=c.code, name=c.name, network=c.network, amount=None) for c in accepted_currencies()
    )
    ai_model = AIModel.objects.orderable().filter(pk=model_id).first()
    if ai_model is None:
        return CheckoutPreview(None, None, currencies, (MODEL_UNAVAILABLE_MESSAGE,))
    new_quote = quote(
        model_id=ai_model.pk,
        prompt_price=ai_model.prompt_price,
        completion_price=ai_model.completion_price,
        token_count=token_count,
        rules=rules_from_settings(),
    )
    if new_quote.valid:
        rates = cached_rates()
        currencies = tuple(
            CurrencyPreview(
                code=c.code,
                name=c.name,
                network=c.network,
                amount=usd_to_crypto(new_quote.total_usd_cost, c.code, rates[c.code]) if rates.get(c.code) else None,
            )
            for c in accepted_currencies()
        )
    return CheckoutPreview(ai_model, new_quote, currencies, tuple(new_quote.errors))


def order_place(
    *,
    user,
    model_id: str,
    token_count: int,
    crypto_type: str,
    seen_total: Decimal | None,
    idempotency_key: UUID,
    top_up_of: str | None = None,
) -> AITokenOrder:
    """Create the order and its gateway payment, or return the order this key already made.

    `top_up_of` names the customer's delivered order whose key this order adds tokens to
    (orders/services/top_up.py); a key that cannot take tokens raises `OrderRejected` first.

    Raises `OrderRejected` (invalid order, too many unpaid orders), `QuoteChanged` (the price the
    customer saw is no longer the price; `seen_total=None` always asks for confirmation) and
    `CheckoutUnavailable` (capacity guard or gateway failure). Safe to call twice with the same
    `idempotency_key`, concurrently or not: one order and one gateway payment at most.
    """
    existing = _existing_order(user=user, idempotency_key=idempotency_key)
    if existing is not None:
        return existing

    key_order = None
    if top_up_of is not None:
        try:
            key_order = top_up_key_order(user=user, top_up_of=top_up_of)
        except TopUpRefused as refused:
            raise OrderRejected([refused.message]) from None
    currency_codes = [c.code for c in accepted_currencies()]
    if crypto_type not in currency_codes:
        raise OrderRejected(["Please choose one of the cryptocurrencies we accept."])
    ai_model = AIModel.objects.orderable().filter(pk=model_id).first()
    if ai_model is None:
        raise OrderRejected([MODEL_UNAVAILABLE_MESSAGE])
    rules = rules_from_settings()
    new_quote = quote(
        model_id=ai_model.pk,
        prompt_price=ai_model.prompt_price,
        completion_price=ai_model.completion_price,
        token_count=token_count,
        rules=rules,
    )
    if not new_quote.valid:
        raise OrderRejected(list(new_quote.errors))
    if seen_total is None or seen_total != new_quote.total_usd_cost:
        raise QuoteChanged(new_quote)

    # Read the balance (cached, ≤ 60 s) before taking the capacity lock, so no remote call
    # happens while other checkouts wait for it.
    capacity_balance_prefetch()
    order, reserved = _reserve_order(
        user=user,
        ai_model=ai_model,
        new_quote=new_quote,
        markup_rate=rules.markup_rate,
        crypto_type=crypto_type,
        idempotency_key=idempotency_key,
        key_order=key_order,
    )
    if not reserved:  # another request owns this key: its order is the answer
        return _wait_for_payment(order)
    return _attach_gateway_payment(order=order)


def _existing_order(*, user, idempotency_key: UUID) -> AITokenOrder | None:
    order = AITokenOrder.objects.filter(user=user, idempotency_key=idempotency_key).first()
    if order is None:
        return None
    return _wait_for_payment(order)


def _reserve_order(
    *,
    user,
    ai_model: AIModel,
    new_quote: Quote,
    markup_rate: Decimal,
    crypto_type: str,
    idempotency_key: UUID,
    key_order: AITokenOrder | None = None,
) -> tuple[AITokenOrder, bool]:
    """Write the order row (no payment yet) in a short transaction, or find the key's order.

    Returns (order, True) when this call reserved it, (order, False) when the key was taken.
    """
    user_model = get_user_model()
    try:
        with transaction.atomic():
            # Serialise one customer's checkouts so the unpaid-order limit cannot be raced past.
            list(user_model.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
            already = AITokenOrder.objects.filter(user=user, idempotency_key=idempotency_key).first()
            if already is not None:
                return already, False
            unpaid = AITokenOrder.objects.filter(user=user, status=OrderStatus.PENDING).count()
            if unpaid >= settings.MAX_UNPAID_ORDERS_PER_USER:
                raise OrderRejected(
                    [
                        f"You already have {unpaid} unpaid orders. Pay or let one expire before "
                        "placing another."
                    ]
                )
            # The capacity check and the reservation are one step: under the capacity lock, the
            # headroom read here already counts every order reserved before this one.
            capacity_lock()
            try:
                ensure_capacity(base_usd_cost=new_quote.base_usd_cost)
            except CapacityUnavailable:
                logger.warning("checkout refused: capacity model=%s base=%s", ai_model.pk, new_quote.base_usd_cost)
                raise CheckoutUnavailable(CAPACITY_UNAVAILABLE_MESSAGE) from None
            order = AITokenOrder.objects.create(
                user=user,
                idempotency_key=idempotency_key,
                token_count=new_quote.token_count,
                model_id=ai_model.pk,
                prompt_price=ai_model.prompt_price,
                completion_price=ai_model.completion_price,
                price_per_token=new_quote.price_per_token,
                markup_rate=markup_rate,
                base_usd_cost=new_quote.base_usd_cost,
                markup_amount=new_quote.markup_amount,
                total_usd_cost=new_quote.total_usd_cost,
                crypto_type=crypto_type,
                status=OrderStatus.PENDING,
                top_up_of=key_order,
            )
            return order, True
    except IntegrityError:
        # Lost the race for this idempotency key: the winner's order is the answer.
        already = AITokenOrder.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if already is None:
            raise
        return already, False


def _wait_for_payment(order: AITokenOrder) -> AITokenOrder:
    """A duplicate submission waits (briefly) for the first one to get the gateway payment.

    Returns the order once it has a payment; raises `CheckoutUnavailable` if the first request
    gave up (the row is gone); after the wait, returns the order as it is (its page says the
    payment is being set up).
    """
    deadline = time.monotonic() + DUPLICATE_WAIT_SECONDS
    while not order.payment_hash:
        if time.monotonic() >= deadline:
            return order
        time.sleep(DUPLICATE_WAIT_STEP)
        fresh = AITokenOrder.objects.filter(pk=order.pk).first()
        if fresh is None:
            raise CheckoutUnavailable(GATEWAY_UNAVAILABLE_MESSAGE)
        order = fresh
    return order


def _attach_gateway_payment(*, order: AITokenOrder) -> AITokenOrder:
    """Create the gateway payment for a reserved order (no transaction open during the call)."""
    callback_secret = secrets.token_urlsafe(32)
    callback_url = settings.SITE_URL + reverse("orders:kryptoexpress_callback")
    try:
        # Encrypt before the gateway call: a broken encryption key must fail with nothing created.
        callback_secret_encrypted = encrypt(callback_secret)
    except Exception as exc:
        _discard(order, f"cannot encrypt the callback secret ({type(exc).__name__})")
        raise CheckoutUnavailable(GATEWAY_UNAVAILABLE_MESSAGE) from None
    try:
        record = get_kryptoexpress_client().create_payment(
            fiat_amount=order.total_usd_cost,
            crypto_currency=order.crypto_type,
            callback_url=callback_url,
            callback_secret=callback_secret,
        )
        problem = _record_problem(order=order, record=record)
    except KryptoExpressError as exc:
        record, problem = None, f"{type(exc).__name__} status={exc.status_code}"
    except Exception as exc:  # an unparseable answer, a bug: still no stranded order
        record, problem = None, f"unexpected {type(exc).__name__}"
    if problem:
        _discard(order, problem)
        raise CheckoutUnavailable(GATEWAY_UNAVAILABLE_MESSAGE)

    try:
        with transaction.atomic():
            updated = AITokenOrder.objects.filter(pk=order.pk, payment_hash__isnull=True).update(
                payment_id=str(record.id),
                payment_hash=record.hash,
                address=record.address,
                crypto_amount=record.crypto_amount,
                expires_at=record.expires_at,
                callback_secret_encrypted=callback_secret_encrypted,
            )
            if updated != 1:
                raise IntegrityError("order vanished while its payment was created")
            order_record_event(
                order=order,
                source=EventSource.CHECKOUT,
                message="Gateway payment created",
                details={"payment": payment_record_details(record)},
            )
    except Exception as exc:
        # Whatever fails after the gateway call, no order is stranded without its payment: the
        # row (unseen, no payment hash) goes, and the customer can send the same form again.
        _discard(order, f"could not store the gateway payment ({type(exc).__name__})")
        raise CheckoutUnavailable(GATEWAY_UNAVAILABLE_MESSAGE) from None
    order.refresh_from_db()
    customer_mail_enqueue(order_pk=order.pk, kind=PLACED)
    logger.info(
        "order=%s placed total=%s crypto=%s payment_id=%s", order.order_id, order.total_usd_cost, order.crypto_type,
        order.payment_id,
    )
    return order


def _record_problem(*, order: AITokenOrder, record: PaymentRecord) -> str:
    """Why a freshly created gateway payment cannot be used for this order ('' if it can)."""
    if not record.hash or not record.address:
        return "gateway payment has no hash or address"
    if record.payment_type != "PAYMENT":
        return f"gateway payment type is {record.payment_type}"
    if record.fiat_currency != "USD" or record.fiat_amount != order.total_usd_cost:
        return f"gateway payment is for {record.fiat_amount} {record.fiat_currency}"
    if record.crypto_currency != order.crypto_type:
        return f"gateway payment is in {record.crypto_currency}"
    if record.crypto_amount is None or record.crypto_amount <= 0:
        return "gateway payment has no crypto amount"
    if record.expires_at is None:
        return "gateway payment has no expiry"
    return ""


def _discard(order: AITokenOrder, problem: str) -> None:
    """Remove a reserved order that never got a usable payment (nobody has seen it yet)."""
    logger.warning("order=%s discarded before payment: %s", order.order_id, problem)
    AITokenOrder.objects.filter(pk=order.pk, payment_hash__isnull=True).delete()


__all__ = [
    "CheckoutError",
    "CheckoutPreview",
    "CheckoutUnavailable",
    "CurrencyPreview",
    "OrderRejected",
    "QuoteChanged",
    "checkout_preview",
    "order_place",
]
