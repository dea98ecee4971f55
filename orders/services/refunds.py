"""Refunds that reach the customer: their address, one gateway withdrawal, at most once per order.

A payment the store cannot honour (paid late, wrong amount, fulfilment failed for good) goes
back to the customer (docs/refunds.md). The customer gives an address on the order's network;
staff look at the gateway's dry run (fees, what the customer receives) and confirm; the store
asks KryptoExpress to withdraw that one payment's funds to the address (`withdrawType: SINGLE`).

Exactly once — a withdrawal is money leaving:
- one `Refund` row per order (a unique key), moved by conditional UPDATEs only;
- confirming first *claims* the row (`requested|refused → sending`, with the order row locked so
  a staff approval cannot slip in) and commits that intent; only the claimant calls the gateway.
  Double clicks, two staff members, the command run twice: one claim wins, the rest are refused;
- the gateway's answer decides: a withdrawal → `sent` (and the order → `refunded` through
  `order_transition`, with the transaction id as reference); a 4xx refusal → `refused` (nothing
  left the wallet, the gateway said so);
- no answer (timeout, 5xx, garbage) means the funds *may* have left. The store never sends again
  on its own: it re-reads the payment once; `isWithdrawn` true → `sent` (staff asked to record the
  transaction id), otherwise → `unknown` with a staff alert. A process killed after the claim
  leaves `sending` behind; `refund_reconcile` (staff, once the row is older than
  `REFUND_STALE_SECONDS`) re-reads `isWithdrawn` and either completes the refund or hands the
  row back to staff as `requested`.

Why this module is long: the refund is one state machine (claim, call, settle, reconcile, the
refusals that guard it); splitting it would scatter the exactly-once argument across files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from orders.alerts import alert_staff
from orders.models import AITokenOrder, EventSource, OrderStatus, Refund, RefundStatus
from orders.services.transitions import NEEDS_REFUNDABLE_MARK, order_record_event, order_transition
from payments.addresses import NETWORK_LABELS, AddressInvalid, address_validate, refund_network
from payments.client import (
    KryptoExpressClient,
    KryptoExpressError,
    KryptoExpressGatewayError,
    KryptoExpressNetworkError,
    Withdrawal,
    get_kryptoexpress_client,
)
from payments.currencies import format_amount

logger = logging.getLogger("orders.refunds")

S = OrderStatus
R = RefundStatus
REFUNDABLE_STATUSES = frozenset({S.FAILED, S.NEEDS_REVIEW})
# Refundable only once staff marked the order refundable (orders/services/refund_marks.py); the
# lifecycle table says which edges into `refunded` need the mark.
MARKABLE_STATUSES = frozenset(frm for frm, to in NEEDS_REFUNDABLE_MARK if to == S.REFUNDED)
# A top-up of the key in these states is still changing the key's limit: no refund meanwhile.
TOP_UP_IN_FLIGHT = frozenset({S.PAID, S.FULFILLING})
ADDRESS_CHANGEABLE = frozenset({R.REQUESTED, R.REFUSED})
CLAIMABLE = frozenset({R.REQUESTED, R.REFUSED})
IN_FLIGHT = frozenset({R.SENDING, R.UNKNOWN})
# What a customer is told: no internal states (an unknown outcome is "being sent" to them).
PUBLIC_STATUS = {R.REQUESTED: "requested", R.REFUSED: "requested", R.SENDING: "sending", R.UNKNOWN: "sending",
                 R.SENT: "sent"}


class RefundRefused(Exception):
    """The refund cannot go ahead now; the message says why. Nothing was sent or changed."""


@dataclass(frozen=True)
class RefundQuote:
    """The gateway's dry run for this order's refund, as staff confirm it."""

    order_id: str
    crypto_type: str
    address: str
    total: Decimal
    blockchain_fee: Decimal
    service_fee: Decimal
    receiving: Decimal


# --- Which orders -------------------------------------------------------------------------------


def order_refundable(order: AITokenOrder) -> bool:
    """Failed or under review, or delivered / expired and marked refundable by staff (as loaded)."""
    return order.status in REFUNDABLE_STATUSES or (
        order.status in MARKABLE_STATUSES and order.refundable_marked_at is not None
    )


def refund_key_holder(order: AITokenOrder) -> AITokenOrder:
    """The order whose row holds the key this order's tokens are on: itself, or a top-up's key order."""
    if order.top_up_of_id is None:
        return order
    return AITokenOrder.objects.get(pk=order.top_up_of_id)


def refund_key_refusal(order: AITokenOrder, *, usage_too: bool = True) -> str:
    """Why the key stands in the way of refunding this order ('' when it does not). Database only.

    The key must be disabled first (refunding spendable tokens pays twice); a used key is not
    refundable in full; a top-up still being applied to the key must finish first.
    """
    holder = refund_key_holder(order)
    whose = "" if holder.pk == order.pk else f" (the key of order {holder.order_id}, which this top-up added to)"
    if holder.key_hash and not holder.key_disabled:
        return f"{order.order_id} holds a live key{whose}: disable it first."
    if usage_too and holder.key_hash and (holder.key_usage_usd or 0) > 0:
        return (
            f"{order.order_id}: its key{whose} was used ({holder.key_usage_usd} USD), so it is not refundable in full. "
            "Refund the unused part by hand and record it with Mark refunded."
        )
    if holder.key_hash and holder.top_ups.filter(status__in=TOP_UP_IN_FLIGHT).exists():
        return f"{order.order_id}: a top-up of its key is still being applied; wait until it is delivered or failed."
    return ""


# --- Customer: the address ---------------------------------------------------------------------


def refund_can_request(*, order: AITokenOrder) -> bool:
    """Whether the order page should ask for a refund address (no gateway call)."""
    return (
        order_refundable(order)
        and bool(order.payment_id)
        and refund_network(order.crypto_type) is not None
    )


def refund_set_address(*, order: AITokenOrder, address: object, actor=None) -> Refund:
    """Record (or change) where the customer wants their money, until the refund starts.

    The address is checked for the order's network, checksum included, and must not be the
    store's own deposit address. Once staff confirmed the refund the address is frozen: a change
    could otherwise race a withdrawal already on its way.
    """
    if not refund_can_request(order=order):
        raise RefundRefused("This order cannot be refunded to an address.")
    try:
        verified = address_validate(crypto_type=order.crypto_type, address=address, own_addresses=(order.address,))
    except AddressInvalid as exc:
        raise RefundRefused(str(exc)) from None
    with transaction.atomic():
        locked = AITokenOrder.objects.select_for_update().get(pk=order.pk)
        if not order_refundable(locked):
            raise RefundRefused("This order cannot be refunded to an address any more.")
        refund = Refund.objects.filter(order_id=order.pk).first()
        if refund is None:
            try:
                with transaction.atomic():
                    refund = Refund.objects.create(order=locked, address=verified.address, network=verified.network)
            except IntegrityError:  # a concurrent first request won; treat this one as a change
                refund = Refund.objects.get(order_id=order.pk)
        changed = Refund.objects.filter(pk=refund.pk, status__in=ADDRESS_CHANGEABLE).update(
            address=verified.address, network=verified.network, status=R.REQUESTED, updated_at=timezone.now()
        )
        if not changed:
            raise RefundRefused("Your refund has already started, so its address can no longer be changed.")
        order_record_event(
            order=locked, source=EventSource.STAFF if getattr(actor, "is_staff", False) else EventSource.CUSTOMER,
            actor=actor, message="Refund address recorded",
            details={"action": "refund_address", "address": verified.address, "kind": verified.kind},
        )
    refund.refresh_from_db()
    return refund


# --- Staff: checks, dry run, confirm -------------------------------------------------------------


def _refund_ready(order: AITokenOrder) -> Refund:
    """Everything checkable without the gateway; raises RefundRefused with the reason."""
    order.refresh_from_db()
    if order.status == S.REFUNDED:
        raise RefundRefused(f"{order.order_id} is already refunded.")
    if not order_refundable(order):
        hint = " Mark it refundable first if a refund is the answer." if order.status in MARKABLE_STATUSES else ""
        raise RefundRefused(
            f"{order.order_id} is {S(order.status).label.lower()}: only failed or under-review orders, "
            f"and orders staff marked refundable, are refunded.{hint}"
        )
    if not order.payment_id or not order.payment_id.isdigit():
        raise RefundRefused(f"{order.order_id} has no gateway payment to refund.")
    key_problem = refund_key_refusal(order)
    if key_problem:
        raise RefundRefused(key_problem)
    refund = Refund.objects.filter(order_id=order.pk).first()
    if refund is None or not refund.address:
        raise RefundRefused(f"{order.order_id}: the customer has not given a refund address yet.")
    if refund.status == R.SENT:
        raise RefundRefused(f"{order.order_id}: the refund was already sent.")
    if refund.status in IN_FLIGHT:
        raise RefundRefused(
            f"{order.order_id}: a refund is already in flight ({R(refund.status).label.lower()}); "
            "use Re-check refund, never send again."
        )
    return refund


def _refuse_if_withdrawn(order: AITokenOrder, client: KryptoExpressClient) -> None:
    try:
        record = client.get_payment(order.payment_hash or "")
    except KryptoExpressError as exc:
        raise RefundRefused(f"{order.order_id}: the gateway could not be read ({type(exc).__name__}).") from None
    if record.is_withdrawn:
        raise RefundRefused(
            f"{order.order_id}: the payment's funds were already withdrawn from the gateway. "
            "Refund by hand and record the reference with Mark refunded."
        )


def refund_quote(*, order: AITokenOrder, client: KryptoExpressClient | None = None) -> RefundQuote:
    """The gateway's dry run (`onlyCalculate`): nothing is sent. Raises RefundRefused."""
    client = client or get_kryptoexpress_client()
    refund = _refund_ready(order)
    _refuse_if_withdrawn(order, client)
    try:
        withdrawal = client.withdraw_payment(
            payment_id=int(order.payment_id), crypto_currency=order.crypto_type, to_address=refund.address,
            only_calculate=True,
        )
    except KryptoExpressError as exc:
        raise RefundRefused(f"{order.order_id}: the gateway refused the dry run ({exc}).") from None
    return RefundQuote(
        order_id=order.order_id, crypto_type=order.crypto_type, address=refund.address,
        total=withdrawal.total_withdrawal_amount, blockchain_fee=withdrawal.blockchain_fee_amount,
        service_fee=withdrawal.service_fee_amount, receiving=withdrawal.receiving_amount,
    )


def refund_confirm(
    *, order: AITokenOrder, actor=None, client: KryptoExpressClient | None = None, expected_address: str | None = None
) -> Refund:
    """Send the refund — at most once per order, whoever calls and however often.

    `expected_address` is the address the confirming person saw in the dry run: if the customer
    changed it since, nothing is sent (they must look at the new dry run). Raises RefundRefused
    when it cannot start. Returns the refund in its resulting state: `sent`, `refused` (gateway
    said no; nothing sent) or `unknown` (staff alerted).
    """
    client = client or get_kryptoexpress_client()
    refund = _refund_ready(order)
    if expected_address is not None and expected_address != refund.address:
        raise RefundRefused(
            f"{order.order_id}: the customer changed the refund address since the dry run; review it again."
        )
    _refuse_if_withdrawn(order, client)
    refund = _claim(order=order, refund=refund, actor=actor)
    try:
        withdrawal = client.withdraw_payment(
            payment_id=int(order.payment_id), crypto_currency=order.crypto_type, to_address=refund.address,
            only_calculate=False,
        )
    except (KryptoExpressNetworkError, KryptoExpressGatewayError) as exc:
        return _outcome_unknown(order=order, refund=refund, client=client, error=exc, actor=actor)
    except KryptoExpressError as exc:
        return _gateway_refused(order=order, refund=refund, client=client, error=exc, actor=actor)
    return _complete(order=order, refund=refund, withdrawal=withdrawal, actor=actor, how="gateway answer")


def _claim(*, order: AITokenOrder, refund: Refund, actor) -> Refund:
    """Record the intent (`→ sending`) and commit it before any money moves. One caller wins."""
    now = timezone.now()
    with transaction.atomic():
        locked = AITokenOrder.objects.select_for_update().get(pk=order.pk)
        if not order_refundable(locked):
            raise RefundRefused(
                f"{order.order_id} changed meanwhile (now {S(locked.status).label.lower()}"
                f"{'' if locked.status not in MARKABLE_STATUSES else ', not marked refundable'})."
            )
        key_problem = refund_key_refusal(locked)
        if key_problem:
            raise RefundRefused(key_problem)
        claimed = Refund.objects.filter(pk=refund.pk, status__in=CLAIMABLE, address=refund.address).update(
            status=R.SENDING, sending_since=now, attempts=F("attempts") + 1, last_error="",
            confirmed_by=actor if getattr(actor, "pk", None) else None, updated_at=now,
        )
        if not claimed:
            raise RefundRefused(
                f"{order.order_id}: a refund is already in flight or done, or its address just changed; "
                "nothing was sent."
            )
        order_record_event(
            order=locked, source=EventSource.STAFF, actor=actor, message="Refund confirmed: withdrawal intent recorded",
            details={"action": "refund_intent", "address": refund.address, "payment_id": order.payment_id},
        )
    refund.refresh_from_db()
    logger.info("order=%s refund=intent attempt=%s", order.order_id, refund.attempts)
    return refund


def _complete(*, order: AITokenOrder, refund: Refund, withdrawal: Withdrawal | None, actor, how: str) -> Refund:
    """The funds left the gateway: refund `sent`, order `refunded`, customer mailed (on commit)."""
    now = timezone.now()
    tx_ids = list(withdrawal.tx_ids) if withdrawal else []
    reference = (tx_ids[0] if tx_ids else f"KryptoExpress withdrawal of payment {order.payment_id}")[:200]
    values = {"status": R.SENT, "refunded_at": now, "tx_ids": tx_ids, "updated_at": now, "last_error": ""}
    if withdrawal:
        values.update(
            withdrawal_id=withdrawal.id, total_amount=withdrawal.total_withdrawal_amount,
            blockchain_fee_amount=withdrawal.blockchain_fee_amount, service_fee_amount=withdrawal.service_fee_amount,
            receiving_amount=withdrawal.receiving_amount if withdrawal.receiving_amount > 0 else None,
        )
    with transaction.atomic():
        done = Refund.objects.filter(pk=refund.pk, status__in=IN_FLIGHT).update(**values)
        if not done:
            refund.refresh_from_db()
            return refund
        moved = order_transition(
            order=order, from_status=REFUNDABLE_STATUSES | MARKABLE_STATUSES, to_status=S.REFUNDED,
            source=EventSource.STAFF, actor=actor,
            message=f"Refund sent to the customer ({how})",
            details={"action": "refund_sent", "tx_ids": tx_ids, "withdrawal": withdrawal.raw if withdrawal else None,
                     "address": refund.address},
            updates={"refund_reference": reference},
        )
        if not moved:  # cannot happen while the claim holds (staff actions refuse); make it loud
            logger.error("order=%s refund sent but the order was no longer refundable", order.order_id)
        order_id = order.order_id
        if not tx_ids:
            transaction.on_commit(lambda: _alert(
                order_id, "sent, transaction id unknown",
                "The gateway shows the payment withdrawn but did not report the transaction id. "
                "Look it up in the KryptoExpress dashboard and note it on the order.",
            ))
    refund.refresh_from_db()
    logger.info("order=%s refund=sent tx_count=%s", order.order_id, len(tx_ids))
    return refund


def _gateway_refused(*, order, refund, client, error: KryptoExpressError, actor) -> Refund:
    """A 4xx: the gateway refused the request. Check `isWithdrawn` anyway before calling it unsent."""
    try:
        withdrawn = client.get_payment(order.payment_hash or "").is_withdrawn
    except KryptoExpressError:
        withdrawn = None
    if withdrawn is False:
        message = str(error)[:300]
        Refund.objects.filter(pk=refund.pk, status=R.SENDING).update(
            status=R.REFUSED, last_error=message, updated_at=timezone.now()
        )
        order_record_event(order=order, source=EventSource.STAFF, actor=actor,
                           message="Refund refused by the gateway; nothing was sent",
                           details={"action": "refund_refused", "error": message, "status_code": error.status_code})
        refund.refresh_from_db()
        return refund
    return _outcome_unknown(order=order, refund=refund, client=client, error=error, actor=actor, reread=withdrawn)


def _outcome_unknown(*, order, refund, client, error: KryptoExpressError, actor, reread: bool | None = None) -> Refund:
    """No trustworthy answer: never resend. Re-read `isWithdrawn`; if still in doubt, hand to staff."""
    if reread is None:
        try:
            reread = client.get_payment(order.payment_hash or "").is_withdrawn
        except KryptoExpressError:
            reread = None
    if reread is True:
        return _complete(order=order, refund=refund, withdrawal=None, actor=actor,
                         how="answer lost; the gateway shows the payment withdrawn")
    now = timezone.now()
    Refund.objects.filter(pk=refund.pk, status=R.SENDING).update(
        status=R.UNKNOWN, last_error=f"{type(error).__name__}: {error}"[:300], updated_at=now
    )
    order_record_event(order=order, source=EventSource.STAFF, actor=actor,
                       message="Refund outcome unknown: not resent; staff must check",
                       details={"action": "refund_unknown", "error": type(error).__name__,
                                "status_code": error.status_code, "is_withdrawn": reread})
    _alert(order.order_id, "outcome unknown",
           f"The withdrawal call failed ({type(error).__name__}) and the gateway "
           f"{'could not be read' if reread is None else 'still shows the funds'}. The store will NOT resend. "
           "Use Re-check refund once the gateway settles (it re-reads isWithdrawn).")
    refund.refresh_from_db()
    return refund


def refund_reconcile(
    *, order: AITokenOrder, actor=None, client: KryptoExpressClient | None = None, now=None
) -> str:
    """Settle a refund left `sending` (process killed mid-call) or `unknown` (answer lost).

    Re-reads the payment: withdrawn → the refund is `sent` and the order refunded; still there
    → the row goes back to `requested` for staff to confirm again (a person decides, never a
    loop). A `sending` row younger than `REFUND_STALE_SECONDS` may still be mid-call: refused.
    """
    client = client or get_kryptoexpress_client()
    now = now or timezone.now()
    refund = Refund.objects.filter(order_id=order.pk).first()
    if refund is None or refund.status not in IN_FLIGHT:
        raise RefundRefused(f"{order.order_id}: no refund is waiting to be checked.")
    stale_after = timedelta(seconds=int(settings.REFUND_STALE_SECONDS))
    if refund.sending_since and now - refund.sending_since < stale_after:
        raise RefundRefused(
            f"{order.order_id}: the refund started {int((now - refund.sending_since).total_seconds())} s ago and may "
            f"still be on its way; re-check after {int(stale_after.total_seconds())} s."
        )
    try:
        withdrawn = client.get_payment(order.payment_hash or "").is_withdrawn
    except KryptoExpressError as exc:
        raise RefundRefused(f"{order.order_id}: the gateway could not be read ({type(exc).__name__}).") from None
    if withdrawn:
        _complete(order=order, refund=refund, withdrawal=None, actor=actor,
                  how="re-checked: the gateway shows the payment withdrawn")
        return f"{order.order_id}: the gateway shows the funds withdrawn — refund recorded as sent."
    released = Refund.objects.filter(pk=refund.pk, status__in=IN_FLIGHT).update(
        status=R.REQUESTED, sending_since=None, updated_at=timezone.now()
    )
    if released:
        order_record_event(order=order, source=EventSource.STAFF, actor=actor,
                           message="Refund re-checked: the gateway still holds the funds; nothing was sent",
                           details={"action": "refund_reconcile", "is_withdrawn": False})
    return f"{order.order_id}: the gateway still holds the funds — nothing was sent; you may confirm the refund again."


def refunds_stuck(*, now=None) -> list[str]:
    """Order ids whose refund sits in `sending`/`unknown` longer than the stale window (for alerts)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=int(settings.REFUND_STALE_SECONDS))
    return list(
        Refund.objects.filter(status__in=IN_FLIGHT, sending_since__lt=cutoff).values_list("order__order_id", flat=True)
    )


# --- Reading -------------------------------------------------------------------------------------


def refund_public(refund: Refund | None) -> dict | None:
    """The refund as the customer's API shows it: amounts as strings, no internal states."""

    if refund is None:
        return None
    fee = refund.fee_amount
    return {
        "address": refund.address,
        "status": PUBLIC_STATUS[refund.status],
        "tx_ids": list(refund.tx_ids or []),
        "receiving_amount": format_amount(refund.receiving_amount) if refund.receiving_amount is not None else None,
        "fee_amount": format_amount(fee) if fee is not None else None,
        "refunded_at": refund.refunded_at.isoformat() if refund.refunded_at else None,
    }


def refund_network_label(crypto_type: str) -> str:
    network = refund_network(crypto_type)
    return NETWORK_LABELS.get(network or "", crypto_type)


# --- Side effects --------------------------------------------------------------------------------


def _alert(order_id: str, what: str, body: str) -> None:

    # One kind per order: money is at stake, so one refund's alert must never hide another's.
    alert_staff(kind=f"refund:{order_id}", subject=f"Refund for order {order_id}: {what}", body=body, urgent=True)
