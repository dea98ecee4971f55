"""HTTP face of the OpenRouter sandbox: the documented endpoints plus ``_sandbox/`` controls.

Every view is CSRF-exempt JSON, answers errors as ``{"error": {"code", "message"}}`` like the
real service, and (except ``GET /models``) wants ``Authorization: Bearer <OPENROUTER_API_KEY>``.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from typing import Any

import simplejson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from openrouter.sandbox import faults as sandbox_faults
from openrouter.sandbox.catalogue_data import sandbox_catalogue
from openrouter.sandbox.keys import (
    SandboxInputError,
    SandboxNoCredits,
    key_data,
    key_digest,
    plain_number,
    sandbox_key_create,
    sandbox_key_update,
    sandbox_keys_page,
    sandbox_reset,
    sandbox_set_credits,
    simulate_spend,
)
from openrouter.sandbox.models import SandboxAccount, SandboxFault, SandboxKey, SandboxModelOverride

_API_ROOT_RE = re.compile(r"^.*?/api/v1")
_MAX_OFFSET = 10**9


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(simplejson.dumps(payload, use_decimal=True), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error(status: int, message: str, headers: dict[str, str] | None = None) -> HttpResponse:
    return _json({"error": {"code": status, "message": message}}, status=status, headers=headers)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _body(request: HttpRequest) -> dict[str, Any]:
    """The JSON object in the request body (numbers as Decimal), or SandboxInputError."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise SandboxInputError("request body too large") from None
    if not raw:
        return {}
    try:
        payload = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError):
        raise SandboxInputError("request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise SandboxInputError("request body must be a JSON object")
    return payload


def _auth_error(request: HttpRequest) -> HttpResponse | None:
    """401 unless the bearer token is the configured management key (403 for an ordinary key)."""
    header = request.headers.get("Authorization", "")
    expected = settings.OPENROUTER_API_KEY
    if not header.startswith("Bearer ") or not header[7:].strip():
        return error(401, "No auth credentials found")
    token = header[7:]
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return None
    if SandboxKey.objects.filter(hash=key_digest(token)).exists():
        return error(403, "Only management keys can perform this operation")
    return error(401, "Invalid management key")


def _lost_response_delay(fault: SandboxFault) -> float:
    if fault.latency_ms:
        return fault.latency_ms / 1000
    timeout = settings.HTTP_TIMEOUT
    read_timeout = timeout[1] if isinstance(timeout, tuple | list) else timeout
    return float(read_timeout) + 1.0


def sandbox_api(*, methods: tuple[str, ...], authenticated: bool = True) -> Callable:
    """Wrap a sandbox endpoint: method check, injected faults, bearer auth, JSON errors."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                return error(405, f"Method {request.method} not allowed", headers={"Allow": ", ".join(methods)})
            plan = sandbox_faults.take_faults(method=request.method, path=_API_ROOT_RE.sub("", request.path_info))
            if plan.latency_ms:
                time.sleep(plan.latency_ms / 1000)
            if plan.status is not None:
                headers = {}
                if plan.status.retry_after is not None:
                    headers["Retry-After"] = str(plan.status.retry_after)
                message = plan.status.message or f"Sandbox fault: injected HTTP {plan.status.status_code}"
                return error(plan.status.status_code, message, headers=headers)
            if authenticated and (denied := _auth_error(request)) is not None:
                return denied
            try:
                response = view(request, *args, **kwargs)
            except SandboxInputError as exc:
                response = error(400, str(exc))
            if plan.lost is not None:
                # The work above is committed (no ATOMIC_REQUESTS); only the answer goes missing.
                if plan.lost.status_code:
                    return error(plan.lost.status_code, "Sandbox fault: the response was lost")
                time.sleep(_lost_response_delay(plan.lost))
            return response

        return wrapper

    return decorator


def _control(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Control endpoints: no faults, but the same bearer key as the API (demo tooling has it)."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if (denied := _auth_error(request)) is not None:
            return denied
        try:
            return view(request, *args, **kwargs)
        except (SandboxInputError, ValueError, TypeError) as exc:
            return error(400, str(exc)[:200])

    return wrapper


def _account_data(account: SandboxAccount) -> dict[str, Any]:
    return {"total_credits": plain_number(account.total_credits), "total_usage": plain_number(account.total_usage)}


# --- The documented API ------------------------------------------------------------------------


@sandbox_api(methods=("GET",), authenticated=False)
def models_list(request: HttpRequest) -> HttpResponse:
    models = sandbox_catalogue()
    return _json({"data": models, "total_count": len(models), "links": {"next": None}})


@sandbox_api(methods=("GET",))
def credits_view(request: HttpRequest) -> HttpResponse:
    return _json({"data": _account_data(SandboxAccount.load())})


def _offset(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    if not raw.isascii() or not raw.isdigit() or int(raw) > _MAX_OFFSET:
        raise SandboxInputError("offset must be a non-negative integer")
    return int(raw)


@sandbox_api(methods=("GET", "POST"))
def keys_collection(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            created = sandbox_key_create(_body(request))
        except SandboxNoCredits as exc:
            return error(402, str(exc))
        return _json({"data": key_data(created.key), "key": created.plaintext}, status=201)
    include_disabled = request.GET.get("include_disabled", "false").lower() in {"true", "1"}
    keys = sandbox_keys_page(offset=_offset(request.GET.get("offset")), include_disabled=include_disabled)
    return _json({"data": [key_data(key) for key in keys]})


@sandbox_api(methods=("GET", "PATCH", "DELETE"))
def key_detail(request: HttpRequest, key_hash: str) -> HttpResponse:
    key = SandboxKey.objects.filter(hash=key_hash).first()
    if key is None:
        return error(404, "Key not found")
    if request.method == "DELETE":
        key.delete()
        return _json({"deleted": True})
    if request.method == "PATCH":
        key = sandbox_key_update(key, _body(request))
    return _json({"data": key_data(key)})


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return error(404, "Not found")


# --- Controls for tests and demos (not part of OpenRouter's API) -------------------------------


def _fault_data(fault: SandboxFault) -> dict[str, Any]:
    return {
        "id": fault.pk,
        "kind": fault.kind,
        "method": fault.method,
        "path_prefix": fault.path_prefix,
        "status_code": fault.status_code,
        "latency_ms": fault.latency_ms,
        "retry_after": fault.retry_after,
        "message": fault.message,
        "remaining": fault.remaining,
        "hits": fault.hits,
    }


@_control
def control_faults(request: HttpRequest) -> HttpResponse:
    """GET: active faults; POST {kind, status_code, times, method, path_prefix, latency_ms, retry_after, message}
    injects one (see ``faults.inject_fault``); DELETE: clear them all."""
    if request.method == "GET":
        return _json({"data": [_fault_data(f) for f in SandboxFault.objects.active()]})
    if request.method == "DELETE":
        return _json({"deleted": sandbox_faults.clear_faults()})
    if request.method != "POST":
        return error(405, "Method not allowed")
    body = _body(request)
    allowed = {"kind", "status_code", "times", "method", "path_prefix", "latency_ms", "retry_after", "message"}
    unknown = set(body) - allowed
    if unknown:
        raise SandboxInputError(f"unknown fields: {', '.join(sorted(unknown))}")
    fault = sandbox_faults.inject_fault(**body)
    return _json({"data": _fault_data(fault)}, status=201)


@_control
def control_spend(request: HttpRequest, key_hash: str) -> HttpResponse:
    """POST {"usd": "1.25"}: simulate the key's holder spending; usage and limit_remaining change."""
    if request.method != "POST":
        return error(405, "Method not allowed")
    usd = _body(request).get("usd")
    if isinstance(usd, str):
        try:
            usd = Decimal(usd)
        except ArithmeticError:
            raise SandboxInputError("usd must be a number") from None
    try:
        spent = simulate_spend(key_hash, usd)
    except SandboxKey.DoesNotExist:
        return error(404, "Key not found")
    key = SandboxKey.objects.get(hash=key_hash)
    return _json({"data": key_data(key), "spent": plain_number(spent)})


def _money(value: Any, what: str) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value) if isinstance(value, str | int | Decimal) and not isinstance(value, bool) else None
    except ArithmeticError:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0 or amount >= Decimal(10) ** 9:
        raise SandboxInputError(f"{what} must be a non-negative number")
    return amount


@_control
def control_credits(request: HttpRequest) -> HttpResponse:
    """POST {"total_credits": ..., "total_usage": ...}: set the account (e.g. drain it to demo 402)."""
    if request.method == "POST":
        body = _body(request)
        sandbox_set_credits(
            total_credits=_money(body.get("total_credits"), "total_credits"),
            total_usage=_money(body.get("total_usage"), "total_usage"),
        )
    return _json({"data": _account_data(SandboxAccount.load())})


@_control
def control_models(request: HttpRequest) -> HttpResponse:
    """POST {"id", "hidden", "name", "prompt", "completion"}: change the catalogue; DELETE: restore it."""
    if request.method == "DELETE":
        return _json({"deleted": sandbox_faults.clear_model_overrides()})
    if request.method == "POST":
        body = _body(request)
        model_id = body.get("id")
        if not isinstance(model_id, str) or not model_id or len(model_id) > 200:
            raise SandboxInputError("id is required")
        texts = {name: body.get(name, "") for name in ("name", "prompt", "completion")}
        limits = {"name": 300, "prompt": 40, "completion": 40}
        if any(not isinstance(value, str) or len(value) > limits[name] for name, value in texts.items()):
            raise SandboxInputError("name, prompt and completion must be short strings")
        sandbox_faults.override_model(model_id, hidden=body.get("hidden") is True, **texts)
    overrides = [
        {"id": o.model_id, "hidden": o.hidden, "name": o.name, "prompt": o.prompt, "completion": o.completion}
        for o in SandboxModelOverride.objects.all()
    ]
    return _json({"data": overrides})


@_control
def control_reset(request: HttpRequest) -> HttpResponse:
    """POST: forget every key, fault and override; the account returns to $100 unused."""
    if request.method != "POST":
        return error(405, "Method not allowed")
    sandbox_reset()
    return _json({"reset": True})
