"""HTTP face of the KryptoExpress sandbox: the gateway's API and a control page.

Thin: each view parses the request and calls one function of `payments.sandbox.gateway`.
The API answers JSON shaped like the real gateway's (records written with Decimal numbers,
errors as `{"message", "error", "details"}`); the control page is for people.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from decimal import Decimal
from urllib.parse import urlencode

import simplejson
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from payments.addresses import refund_network
from payments.currencies import CURRENCIES, format_amount, get_currency
from payments.sandbox import gateway, records, wallet
from payments.sandbox.models import SandboxPayment

MAX_REQUEST_BYTES = 16 * 1024
_REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}


# --- API ---------------------------------------------------------------------------------------


def _json(data: object, status: int = 200) -> HttpResponse:
    # simplejson writes Decimal as a JSON number with its exact digits (JsonResponse would quote it).
    return HttpResponse(simplejson.dumps(data, use_decimal=True), status=status, content_type="application/json")


def _error(status: int, message: str, details: list[dict[str, str]] | None = None) -> HttpResponse:
    body: dict[str, object] = {"message": message, "error": _REASONS.get(status, "Error")}
    if details:
        body["details"] = details
    return _json(body, status=status)


def _simulate_latency() -> None:
    """Optional added latency (`SANDBOX_KRYPTO_EXPRESS_LATENCY_MS`) for benchmarks and demos."""
    latency_ms = float(getattr(settings, "SANDBOX_KRYPTO_EXPRESS_LATENCY_MS", 0) or 0)
    if latency_ms > 0:
        time.sleep(latency_ms / 1000)


def _authenticated(request: HttpRequest) -> bool:
    given = request.headers.get("X-Api-Key", "")
    expected = settings.KRYPTO_EXPRESS_API_KEY
    return bool(given and expected) and hmac.compare_digest(given.encode(), expected.encode())


def _reject_constant(name: str) -> None:
    raise ValueError(name)


def _authenticated_json_post(request: HttpRequest) -> object:
    """The JSON body of an authenticated POST, or the gateway's error answer for a bad request."""
    if request.method != "POST":
        return _error(405, "Method not allowed")
    if not _authenticated(request):
        return _error(401, "Invalid or missing API key")
    if len(request.body) > MAX_REQUEST_BYTES:
        return _error(400, "Request body too large")
    try:
        return json.loads(request.body, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return _error(400, "Request body must be JSON")


def _answer_json_post(request: HttpRequest, handle: Callable[[object], HttpResponse]) -> HttpResponse:
    """`handle(payload)` for an authenticated JSON POST; the gateway's error answers otherwise."""
    payload = _authenticated_json_post(request)
    if isinstance(payload, HttpResponse):
        return payload
    try:
        return handle(payload)
    except gateway.SandboxValidationError as exc:
        return _error(400, "Validation failed", exc.details)


@csrf_exempt
def api_payment(request: HttpRequest) -> HttpResponse:
    """`POST /payment` (X-Api-Key) creates a payment; `GET /payment?hash=` (public) reads one."""
    _simulate_latency()
    if request.method == "GET":
        payment_hash = request.GET.get("hash", "")
        if not payment_hash:
            return _error(400, "Query parameter 'hash' is required", [{"field": "hash", "message": "required"}])
        payment = gateway.sandbox_payment_get(payment_hash=payment_hash)
        if payment is None:
            return _error(404, "Payment not found")
        return _json(records.payment_record(payment))
    return _answer_json_post(request, _create_payment)


def _create_payment(payload: object) -> HttpResponse:
    return _json(records.payment_record(gateway.sandbox_payment_create(payload=payload)), status=201)


def _codes(predicate) -> HttpResponse:
    return _json([code for code, currency in CURRENCIES.items() if predicate(currency)])


@require_http_methods(["GET"])
def api_cryptocurrency(request: HttpRequest) -> HttpResponse:
    """`GET /cryptocurrency`: the native coins (not tokens)."""
    _simulate_latency()
    return _codes(lambda currency: not currency.is_stable)


@require_http_methods(["GET"])
def api_cryptocurrency_all(request: HttpRequest) -> HttpResponse:
    """`GET /cryptocurrency/all`: every code the gateway accepts."""
    _simulate_latency()
    return _codes(lambda currency: True)


@require_http_methods(["GET"])
def api_cryptocurrency_stable(request: HttpRequest) -> HttpResponse:
    """`GET /cryptocurrency/stable`: stablecoins (PAYMENT only)."""
    _simulate_latency()
    return _codes(lambda currency: currency.is_stable)


@require_http_methods(["GET"])
def api_price(request: HttpRequest) -> HttpResponse:
    """`GET /cryptocurrency/price?cryptoCurrency=BTC,USDT_TRC20&fiatCurrency=USD`: one object, or a list for several."""
    _simulate_latency()
    codes = [
        code.strip()
        for value in request.GET.getlist("cryptoCurrency")[:20]
        for code in value[:500].split(",")
        if code.strip()
    ]
    fiat = request.GET.get("fiatCurrency", "USD")
    try:
        quotes = gateway.sandbox_prices(crypto_codes=codes, fiat_currency=fiat)
    except gateway.SandboxValidationError as exc:
        return _error(400, "Validation failed", exc.details)
    items = [{"cryptoCurrency": q.crypto_currency, "fiatCurrency": q.fiat_currency, "price": q.price} for q in quotes]
    return _json(items[0] if len(items) == 1 else items)


@csrf_exempt
def api_wallet(request: HttpRequest) -> HttpResponse:
    """`GET /wallet` (X-Api-Key): balances of paid payments not yet withdrawn."""
    _simulate_latency()
    if request.method != "GET":
        return _error(405, "Method not allowed")
    if not _authenticated(request):
        return _error(401, "Invalid or missing API key")
    return _json(wallet.wallet_balances())


@csrf_exempt
def api_wallet_withdrawal(request: HttpRequest) -> HttpResponse:
    """`POST /wallet/withdrawal` (X-Api-Key): SINGLE or ALL, or a dry run with `onlyCalculate`."""
    _simulate_latency()
    return _answer_json_post(request, _withdraw)


def _withdraw(payload: object) -> HttpResponse:
    try:
        return _json(wallet.sandbox_withdraw(payload=payload))
    except wallet.WithdrawalRefused as exc:
        return _error(400, str(exc))
    except wallet.InjectedFault:
        return _error(500, "Internal gateway error (injected by the sandbox)")


# --- Control page ------------------------------------------------------------------------------


def _safe_return_url(request: HttpRequest) -> str | None:
    candidate = request.GET.get("return") or request.POST.get("return") or ""
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}):
        return candidate
    return None


def _amount_text(amount: Decimal | None) -> str:
    return format_amount(amount) if amount is not None else ""


def _control_context(payment: SandboxPayment, request: HttpRequest, *, error: str = "") -> dict:
    currency = get_currency(payment.crypto_currency)
    now = timezone.now()
    return {
        "payment": payment,
        "currency": currency,
        "requested_crypto_text": _amount_text(payment.requested_crypto_amount),
        "crypto_text": _amount_text(payment.crypto_amount),
        "status_label": gateway.payment_status_label(payment, now=now),
        "is_expired": payment.expires_at <= now,
        "record_json": records.record_json(payment, indent=2),
        "actions": gateway.ACTIONS.items(),
        "attempts": payment.callback_attempts.all()[:20],
        "return_url": _safe_return_url(request),
        "has_secret": bool(payment.callback_secret),
        "error": error,
        "sample_refund_addresses": wallet.SAMPLE_REFUND_ADDRESSES.get(
            refund_network(payment.crypto_currency) or "", ()
        ),
    }


@require_http_methods(["GET"])
def control_index(request: HttpRequest) -> HttpResponse:
    """The latest sandbox payments, each linking to its control page."""
    payments = list(SandboxPayment.objects.all()[:50])
    now = timezone.now()
    rows = [(payment, gateway.payment_status_label(payment, now=now)) for payment in payments]
    return render(request, "kryptoexpress_sandbox/control_index.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
def control(request: HttpRequest, payment_hash: str) -> HttpResponse:
    """Show one payment; POST `action` to simulate what the customer's wallet does."""
    payment = get_object_or_404(SandboxPayment, hash=payment_hash)
    if request.method == "GET":
        return render(request, "kryptoexpress_sandbox/control.html", _control_context(payment, request))
    action = request.POST.get("action", "")
    try:
        payment = gateway.sandbox_payment_act(payment_hash=payment.hash, action=action)
    except gateway.UnknownAction:
        context = _control_context(payment, request, error="Unknown action: choose one of the buttons below.")
        return render(request, "kryptoexpress_sandbox/control.html", context, status=400)
    note = " The signed callback is on its way." if payment.callback_url else ""
    messages.success(request, f"Done: {gateway.ACTIONS[action]}.{note}")
    target = reverse("kryptoexpress_sandbox:control", args=[payment.hash])
    return_url = _safe_return_url(request)
    if return_url:
        target += "?" + urlencode({"return": return_url})
    return HttpResponseRedirect(target)
