"""Poller benchmark: one poll cycle over N pending orders against the gateway sandbox over HTTP.

Run with `make bench` (or `RUN_BENCH=1 pytest tests/bench/bench_poller.py -s -p no:xdist`).
The KryptoExpress sandbox answers `GET /payment?hash=` with 50 ms of added latency
(`SANDBOX_KRYPTO_EXPRESS_LATENCY_MS`). It runs in a separate process (gunicorn, threaded) on the
same database, so the sandbox's own CPU work doesn't compete with the poller for this process's
GIL — as with the real gateway. On SQLite (whose test database lives in this process's memory)
the sandbox runs in-process on `live_server` instead, which costs the poller some CPU.

Reported per size: the cycle's wall time, checks per second, and the ideal
N × latency ÷ concurrency. Target: 10,000 orders in under 60 s and within 1.5× of the ideal.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from orders.models import AITokenOrder, OrderStatus
from orders.services.polling import payments_poll
from payments.sandbox.gateway import SANDBOX_MERCHANT_ID
from payments.sandbox.models import SandboxPayment
from tests.bench.marks import BENCH_MARKS
from tests.factories import UserFactory

pytestmark = [
    *BENCH_MARKS,
    pytest.mark.django_db(transaction=True),
]

LATENCY_MS = 50
BASE_DIR = Path(__file__).resolve().parents[2]
RESULTS: list[str] = []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def gateway_url(request, settings):
    """Base URL of a KryptoExpress sandbox with 50 ms latency (separate process on PostgreSQL)."""
    settings.SANDBOX_KRYPTO_EXPRESS_LATENCY_MS = LATENCY_MS
    if connection.vendor != "postgresql":
        live_server = request.getfixturevalue("live_server")
        settings.ALLOWED_HOSTS = ["*"]
        yield live_server.url + "/sandbox/kryptoexpress/api", "in-process live_server"
        return
    port = _free_port()
    threads = max(64, int(django_settings.PAYMENT_POLL_CONCURRENCY) * 2)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DEBUG": "1",
        "SANDBOX": "true",
        "SANDBOX_KRYPTO_EXPRESS_LATENCY_MS": str(LATENCY_MS),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
        "TOKENSTORE_IGNORE_DOTENV": "1",
    }
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "storefront.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--worker-class", "gthread", "--workers", "1", "--threads", str(threads), "--log-level", "warning",
        ],
        cwd=BASE_DIR,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/sandbox/kryptoexpress/api"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url + "/cryptocurrency", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("sandbox server did not start") from None
                time.sleep(0.2)
        yield url, f"gunicorn gthread ({threads} threads), separate process"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def _seed(n: int) -> None:
    """N pending orders, each with an unpaid payment on the sandbox gateway."""
    user = UserFactory()
    now = timezone.now()
    payments, orders = [], []
    for i in range(n):
        payment_hash = secrets.token_hex(32)
        payments.append(
            SandboxPayment(
                hash=payment_hash, payment_type="PAYMENT", fiat_currency="USD", fiat_amount=Decimal("2.16"),
                crypto_amount=Decimal("0.00002227"), requested_fiat_amount=Decimal("2.16"),
                requested_crypto_amount=Decimal("0.00002227"), crypto_currency="BTC", address=f"bc1qbench{i:030d}",
                user_id=SANDBOX_MERCHANT_ID, callback_url="", callback_secret="", created_at=now,
                expires_at=now + timedelta(hours=2),
            )
        )
        orders.append(
            AITokenOrder(
                user=user, token_count=200000, model_id="anthropic/claude-3-sonnet",
                prompt_price=Decimal("0.000003"), completion_price=Decimal("0.000015"),
                price_per_token=Decimal("0.000009"), markup_rate=Decimal("0.20"), base_usd_cost=Decimal("1.80"),
                markup_amount=Decimal("0.36"), total_usd_cost=Decimal("2.16"), crypto_type="BTC",
                crypto_amount=Decimal("0.00002227"), payment_id=str(i + 1), payment_hash=payment_hash,
                address=f"bc1qbench{i:030d}", expires_at=now + timedelta(hours=2), status=OrderStatus.PENDING,
            )
        )
    SandboxPayment.objects.bulk_create(payments, batch_size=1000)
    AITokenOrder.objects.bulk_create(orders, batch_size=1000)


@pytest.mark.parametrize("n", [1_000, 10_000])
def test_poll_cycle(n, gateway_url, settings):
    url, where = gateway_url
    settings.KRYPTO_EXPRESS_API_URL = url
    concurrency = int(settings.PAYMENT_POLL_CONCURRENCY)
    _seed(n)

    report = payments_poll(concurrency=concurrency)

    ideal = n * (LATENCY_MS / 1000) / concurrency
    line = (
        f"poller N={n:,} concurrency={concurrency} latency={LATENCY_MS}ms db={connection.vendor} "
        f"gateway={where}: wall {report.seconds:.2f}s, {report.checked / report.seconds:.0f} checks/s, "
        f"ideal {ideal:.2f}s, ratio {report.seconds / ideal:.2f}x"
    )
    RESULTS.append(line)
    print("\n" + line)
    assert report.checked == n and report.errors == 0 and report.changed == 0
    if n >= 10_000 and connection.vendor == "postgresql":
        # The target assumes the gateway is elsewhere (its CPU is not ours), as in production.
        assert report.seconds < 60
        assert report.seconds <= 1.5 * ideal
