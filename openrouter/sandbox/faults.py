"""Fault injection for the OpenRouter sandbox, for tests and demos.

Faults live in the database, so one injected from a test, a shell or the control endpoint
(``POST /sandbox/openrouter/api/v1/_sandbox/faults``) hits whichever process serves the call.
Each matching call consumes one use with a conditional UPDATE, so two processes never both use
the last one.

    inject_status(500, times=3, path_prefix="/keys")   # next 3 calls under /keys answer 500
    inject_status(429, retry_after=7)                   # next call of any kind: 429, Retry-After: 7
    inject_latency(2000, times=None)                    # every call waits 2 s until cleared
    inject_lost_response()                              # next POST /keys creates the key, then the
                                                        # caller times out waiting for the answer
    inject_lost_response(status_code=504)               # ...or gets a 504 after the commit
    clear_faults()
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import F

from openrouter.sandbox.keys import simulate_spend
from openrouter.sandbox.models import FaultKind, SandboxFault, SandboxModelOverride

__all__ = [
    "FaultPlan",
    "clear_faults",
    "clear_model_overrides",
    "inject_fault",
    "inject_latency",
    "inject_lost_response",
    "inject_status",
    "override_model",
    "simulate_spend",
    "take_faults",
]

_METHODS = {"", "GET", "POST", "PATCH", "DELETE", "PUT"}


def inject_fault(
    *,
    kind: str = FaultKind.STATUS,
    status_code: int | None = None,
    times: int | None = 1,
    method: str = "",
    path_prefix: str = "",
    latency_ms: int = 0,
    retry_after: int | None = None,
    message: str = "",
) -> SandboxFault:
    """Store a fault for the next ``times`` matching calls (``None`` = until ``clear_faults``).

    ``method`` ("" = any) and ``path_prefix`` (relative to ``/api/v1``, e.g. ``/keys``; "" = any)
    narrow which calls it hits. See ``SandboxFault`` for what each kind does.
    """
    if not all(isinstance(value, str) for value in (kind, method, path_prefix, message)):
        raise ValueError("kind, method, path_prefix and message must be strings")
    if status_code is not None and (isinstance(status_code, bool) or not isinstance(status_code, int)):
        raise ValueError("status_code must be an integer")
    kind = FaultKind(kind)
    method = method.upper()
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}")
    if path_prefix and not path_prefix.startswith("/"):
        raise ValueError("path_prefix is relative to /api/v1 and starts with '/'")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ValueError("times must be a positive integer or None")
    if isinstance(latency_ms, bool) or not isinstance(latency_ms, int) or not 0 <= latency_ms <= 600_000:
        raise ValueError("latency_ms must be between 0 and 600000")
    if kind == FaultKind.STATUS and (status_code is None or not 400 <= status_code <= 599):
        raise ValueError("a status fault needs a 4xx or 5xx status_code")
    if kind == FaultKind.LATENCY and latency_ms <= 0:
        raise ValueError("a latency fault needs latency_ms > 0")
    if kind == FaultKind.LOSE_RESPONSE and status_code is not None and not 500 <= status_code <= 599:
        raise ValueError("a lost response is reported with a 5xx status_code, or none (timeout)")
    if retry_after is not None and (
        isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0
    ):
        raise ValueError("retry_after must be a non-negative integer")
    return SandboxFault.objects.create(
        kind=kind,
        status_code=status_code,
        remaining=times,
        method=method,
        path_prefix=path_prefix,
        latency_ms=latency_ms,
        retry_after=retry_after,
        message=message[:200],
    )


def inject_status(
    status_code: int,
    *,
    times: int | None = 1,
    method: str = "",
    path_prefix: str = "",
    retry_after: int | None = None,
    message: str = "",
) -> SandboxFault:
    """The next ``times`` matching calls answer ``status_code`` and do nothing."""
    return inject_fault(
        kind=FaultKind.STATUS, status_code=status_code, retry_after=retry_after, message=message,
        times=times, method=method, path_prefix=path_prefix,
    )


def inject_latency(
    latency_ms: int, *, times: int | None = None, method: str = "", path_prefix: str = ""
) -> SandboxFault:
    """Matching calls wait ``latency_ms`` before being handled."""
    return inject_fault(
        kind=FaultKind.LATENCY, latency_ms=latency_ms, times=times, method=method, path_prefix=path_prefix
    )


def inject_lost_response(
    *,
    times: int | None = 1,
    method: str = "POST",
    path_prefix: str = "/keys",
    status_code: int | None = None,
    latency_ms: int = 0,
) -> SandboxFault:
    """The call is carried out and committed (a key is created), but its answer never arrives.

    Without ``status_code`` the sandbox sleeps ``latency_ms`` (default: the client's read timeout
    plus one second) before answering, so the caller times out; with one (e.g. 504) it answers
    that error instead of the real response.
    """
    return inject_fault(
        kind=FaultKind.LOSE_RESPONSE, status_code=status_code, latency_ms=latency_ms,
        times=times, method=method, path_prefix=path_prefix,
    )


def clear_faults() -> int:
    """Remove every fault; returns how many there were."""
    deleted, _ = SandboxFault.objects.all().delete()
    return deleted


def override_model(
    model_id: str, *, hidden: bool = False, name: str = "", prompt: str = "", completion: str = ""
) -> SandboxModelOverride:
    """Hide a catalogue model, change its prices, or add a new one (demos of models coming and going)."""
    override, _ = SandboxModelOverride.objects.update_or_create(
        model_id=model_id,
        defaults={"hidden": hidden, "name": name, "prompt": prompt, "completion": completion},
    )
    return override


def clear_model_overrides() -> int:
    deleted, _ = SandboxModelOverride.objects.all().delete()
    return deleted


@dataclass
class FaultPlan:
    """What the faults matching one call ask the sandbox to do with it."""

    latency_ms: int = 0
    status: SandboxFault | None = None
    lost: SandboxFault | None = None
    used: list[SandboxFault] = field(default_factory=list)


def _consume(fault: SandboxFault) -> bool:
    """Use up one of the fault's calls; False if another process took the last one."""
    queryset = SandboxFault.objects.filter(pk=fault.pk)
    if fault.remaining is not None:
        queryset = queryset.filter(remaining__gt=0)
        return bool(queryset.update(remaining=F("remaining") - 1, hits=F("hits") + 1))
    return bool(queryset.update(hits=F("hits") + 1))


def take_faults(*, method: str, path: str) -> FaultPlan:
    """Consume the faults matching this call: every latency, then the first status or lost response."""
    plan = FaultPlan()
    candidates = [
        fault
        for fault in SandboxFault.objects.active()
        if fault.method in ("", method.upper()) and path.startswith(fault.path_prefix)
    ]
    for fault in candidates:
        if fault.kind == FaultKind.LATENCY and _consume(fault):
            plan.latency_ms += fault.latency_ms
            plan.used.append(fault)
    for fault in candidates:
        if fault.kind == FaultKind.STATUS and _consume(fault):
            plan.status = fault
            plan.used.append(fault)
            return plan
    for fault in candidates:
        if fault.kind == FaultKind.LOSE_RESPONSE and _consume(fault):
            plan.lost = fault
            plan.used.append(fault)
            return plan
    return plan
