"""An in-memory OpenRouter account for fulfilment unit tests, plus order builders.

`FakeOpenRouter` has the public methods of `openrouter.client.OpenRouterClient` that the store
uses, keeps keys the way OpenRouter does (plaintext only in the create response), is thread-safe
(PostgreSQL race tests call it from several threads), and can inject faults:
`fail_next(method, exc, times)` raises instead of acting; `lose_next_create()` creates the key and
then raises a timeout, as when a response is lost after OpenRouter committed.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from openrouter.client import CreatedKey, Credits, KeyInfo, OpenRouterNetworkError, OpenRouterNotFound
from orders.models import EventSource, OrderEvent, OrderStatus
from tests.factories import OrderFactory


class FakeOpenRouter:
    def __init__(self, *, total_credits: Decimal = Decimal("100"), total_usage: Decimal = Decimal("0")) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, dict] = {}
        self.plaintexts: list[str] = []
        self.calls: list[str] = []
        self.faults: list[list] = []  # [method, exception, remaining]
        self.lost_creates = 0
        self.create_delay = 0.0
        self.on_create: Callable[[str], None] | None = None
        self.total_credits = total_credits
        self.total_usage = total_usage

    # --- fault injection ---------------------------------------------------------------------
    def fail_next(self, method: str, exc: Exception, times: int = 1) -> None:
        self.faults.append([method, exc, times])

    def lose_next_create(self, times: int = 1) -> None:
        self.lost_creates += times

    def _maybe_fail(self, method: str) -> None:
        with self.lock:
            self.calls.append(method)
            for fault in self.faults:
                if fault[0] == method and fault[2] > 0:
                    fault[2] -= 1
                    raise fault[1]

    # --- inspection ----------------------------------------------------------------------------
    def live_keys(self, order_id: str | None = None) -> list[dict]:
        return [
            k for k in self.keys.values() if not k["disabled"] and (order_id is None or order_id in k["name"])
        ]

    def spend(self, key_hash: str, usd: Decimal) -> None:
        self.keys[key_hash]["usage"] += usd

    # --- the client API ------------------------------------------------------------------------
    def _info(self, k: dict) -> KeyInfo:
        remaining = None if k["limit"] is None else max(k["limit"] - k["usage"], Decimal(0))
        return KeyInfo(
            hash=k["hash"],
            name=k["name"],
            label=k["label"],
            disabled=k["disabled"],
            limit=k["limit"],
            limit_remaining=remaining,
            usage=k["usage"],
            created_at=k["created_at"],
            expires_at=k["expires_at"],
        )

    def create_key(self, *, name: str, limit: Decimal, expires_at: datetime | None = None) -> CreatedKey:
        self._maybe_fail("create_key")
        if self.create_delay:
            time.sleep(self.create_delay)
        if self.on_create is not None:
            self.on_create(name)
        plaintext = "sk-or-v1-" + secrets.token_hex(32)
        key_hash = hashlib.sha256(plaintext.encode()).hexdigest()
        with self.lock:
            self.keys[key_hash] = {
                "hash": key_hash,
                "name": name,
                "label": plaintext[:12] + "..." + plaintext[-3:],
                "disabled": False,
                "limit": limit,
                "usage": Decimal(0),
                "created_at": datetime.now(UTC),
                "expires_at": expires_at,
            }
            self.plaintexts.append(plaintext)
            lost = self.lost_creates > 0
            if lost:
                self.lost_creates -= 1
        if lost:
            raise OpenRouterNetworkError("POST /keys: timed out (ReadTimeout)")
        return CreatedKey(info=self._info(self.keys[key_hash]), key=plaintext)

    def get_key(self, key_hash: str) -> KeyInfo:
        self._maybe_fail("get_key")
        if key_hash not in self.keys:
            raise OpenRouterNotFound("GET /keys/{hash}: HTTP 404", status_code=404)
        return self._info(self.keys[key_hash])

    def list_keys(self, *, include_disabled: bool = True) -> list[KeyInfo]:
        self._maybe_fail("list_keys")
        with self.lock:
            return [self._info(k) for k in self.keys.values() if include_disabled or not k["disabled"]]

    def update_key(self, key_hash: str, *, disabled: bool | None = None, limit: Decimal | None = None) -> KeyInfo:
        self._maybe_fail("update_key")
        if key_hash not in self.keys:
            raise OpenRouterNotFound("PATCH /keys/{hash}: HTTP 404", status_code=404)
        if disabled is not None:
            self.keys[key_hash]["disabled"] = disabled
        if limit is not None:
            self.keys[key_hash]["limit"] = limit
        return self._info(self.keys[key_hash])

    def delete_key(self, key_hash: str) -> None:
        self._maybe_fail("delete_key")
        with self.lock:
            if self.keys.pop(key_hash, None) is None:
                raise OpenRouterNotFound("DELETE /keys/{hash}: HTTP 404", status_code=404)

    def get_credits(self) -> Credits:
        self._maybe_fail("get_credits")
        return Credits(total_credits=self.total_credits, total_usage=self.total_usage)


@pytest.fixture(name="fake_openrouter")
def fake_openrouter_account(monkeypatch) -> FakeOpenRouter:
    """Every OpenRouter client the store builds is this fake account."""
    fake = FakeOpenRouter()
    for module in (
        "orders.services.fulfilment",
        "orders.services.reconciler",
        "orders.services.key_sweep",
        "orders.services.staff_actions",
        "orders.services.key_usage",
        "openrouter.credits",
    ):
        monkeypatch.setattr(f"{module}.get_openrouter_client", lambda: fake)
    return fake


def paid_order(**kwargs):
    """An order the way a verified payment leaves it: status paid, paid_at set, a paid event."""
    kwargs.setdefault("status", OrderStatus.PAID)
    kwargs.setdefault("paid_at", timezone.now())
    order = OrderFactory(**kwargs)
    OrderEvent.objects.create(
        order=order,
        source=EventSource.CALLBACK,
        from_status=OrderStatus.PENDING,
        to_status=OrderStatus.PAID,
        message="Payment verified",
    )
    return order
