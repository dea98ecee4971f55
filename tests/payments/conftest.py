"""Fixtures for the payments suite: a tiny HTTP receiver that plays the store's callback endpoint."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class ReceivedCallback:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class CallbackReceiver:
    """Records every POST; answers with the queued statuses in turn, then `default_status`."""

    url: str
    received: list[ReceivedCallback] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)
    default_status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedCallback]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        with self.lock:
            return list(self.received)


@pytest.fixture
def callback_receiver():
    receiver = CallbackReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with receiver.lock:
                receiver.received.append(
                    ReceivedCallback(self.path, {k: v for k, v in self.headers.items()}, body, time.monotonic())
                )
                status = receiver.statuses.popleft() if receiver.statuses else receiver.default_status
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):  # silence the test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/callback/"
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _no_stray_callback_threads():
    """Every test waits for the sandbox's callback threads it started, so none outlives it."""
    yield
    from payments.sandbox.delivery import wait_for_deliveries

    assert wait_for_deliveries(timeout=15), "a sandbox callback thread is still running"
