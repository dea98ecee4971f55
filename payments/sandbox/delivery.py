"""Sending the sandbox's signed callbacks, with the gateway's retry schedule.

Like the real gateway: the body is the payment record as compact JSON written from Decimal
(so `0.00001547` stays as written), `X-Signature` is the hex HMAC-SHA512 of its Python-compact
re-serialization keyed with the payment's callback secret (only when one was given), and a
callback that is not answered with 2xx is retried at 0, 120, 240, 480 and 960 s after the event
(times `settings.SANDBOX_CALLBACK_DELAY_SCALE`, which tests shrink). Delivery runs in a daemon
thread started after the change is committed, so the receiver's `GET /payment` sees it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import requests
from django.conf import settings
from django.db import connections, transaction

from payments.sandbox.models import SandboxCallbackAttempt, SandboxPayment
from payments.sandbox.records import record_json
from payments.signatures import sign_body

logger = logging.getLogger("payments.sandbox.delivery")

CALLBACK_SCHEDULE_SECONDS: tuple[int, ...] = (0, 120, 240, 480, 960)
"""Seconds after the event at which the gateway tries (up to 5 attempts)."""

_threads: set[threading.Thread] = set()
_threads_lock = threading.Lock()


@dataclass(frozen=True)
class Callback:
    """One callback to deliver: everything is fixed at event time, like the gateway's."""

    payment_id: int
    action: str
    url: str
    body: bytes
    signature: str | None


def callback_dispatch(*, payment: SandboxPayment, action: str) -> Callback | None:
    """Schedule the signed callback for the payment's current record, sent once committed.

    Returns the callback (None when the payment has no callback URL). Call it inside the
    transaction that changed the payment: a rolled-back change sends nothing.
    """
    if not payment.callback_url:
        return None
    body = record_json(payment, compact=True).encode("utf-8")
    signature = sign_body(body, payment.callback_secret) if payment.callback_secret else None
    callback = Callback(payment_id=payment.pk, action=action, url=payment.callback_url, body=body, signature=signature)
    transaction.on_commit(lambda: start_delivery(callback))
    return callback


def start_delivery(callback: Callback) -> threading.Thread:
    """Deliver `callback` in a background daemon thread (the control page answers at once)."""
    scale = float(settings.SANDBOX_CALLBACK_DELAY_SCALE)
    thread = threading.Thread(
        target=_deliver, args=(callback, scale), name=f"sandbox-callback-{callback.payment_id}", daemon=True
    )
    with _threads_lock:
        _threads.add(thread)
    thread.start()
    return thread


def wait_for_deliveries(timeout: float = 10.0) -> bool:
    """Block until every callback thread has finished (tests); False if some still run at `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        with _threads_lock:
            running = [thread for thread in _threads if thread.is_alive()]
            _threads.difference_update(set(_threads) - set(running))
        if not running:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        running[0].join(min(remaining, 0.2))


def _deliver(callback: Callback, scale: float) -> None:
    headers = {"Content-Type": "application/json", "User-Agent": "KryptoExpress-Sandbox/1.0"}
    if callback.signature:
        headers["X-Signature"] = callback.signature
    started = time.monotonic()
    try:
        for attempt, offset in enumerate(CALLBACK_SCHEDULE_SECONDS, start=1):
            delay = started + offset * scale - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            status_code, error = None, ""
            try:
                response = requests.post(
                    callback.url,
                    data=callback.body,
                    headers=headers,
                    timeout=settings.HTTP_TIMEOUT,
                    allow_redirects=False,
                )
                status_code = response.status_code
                response.close()
            except requests.RequestException as exc:
                error = type(exc).__name__
            ok = status_code is not None and 200 <= status_code < 300
            _record_attempt(callback, attempt=attempt, status_code=status_code, ok=ok, error=error)
            logger.info(
                "sandbox callback payment=%s attempt=%s -> %s", callback.payment_id, attempt, status_code or error
            )
            if ok:
                return
        logger.warning("sandbox callback payment=%s gave up after %s attempts", callback.payment_id, attempt)
    finally:
        connections.close_all()


def _record_attempt(callback: Callback, *, attempt: int, status_code: int | None, ok: bool, error: str) -> None:
    try:
        SandboxCallbackAttempt.objects.create(
            payment_id=callback.payment_id,
            action=callback.action,
            attempt=attempt,
            url=callback.url[:2000],
            status_code=status_code,
            ok=ok,
            error=error[:200],
        )
    except Exception:  # the log is a nicety; delivery goes on without it
        logger.debug("could not record sandbox callback attempt", exc_info=True)
