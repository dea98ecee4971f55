"""A real Celery worker *process* (prefork), for tests that kill workers the way an OOM or a deploy does.

`tests/worker_support.py` runs a worker thread in the test process; a thread cannot be SIGKILLed.
Here the worker is `celery -A storefront worker` in its own process group, configured through its
environment to use the test database (PostgreSQL), this test process's Redis database as broker
and cache, and the sandboxes on `live_server`. `publishing_to_worker()` makes the test process
publish tasks to the same Redis queue instead of running them inline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

from tests.worker_support import forget_connections, purge_queue, worker_broker_url

ROOT = Path(settings.BASE_DIR)


@contextmanager
def publishing_to_worker() -> Iterator[str]:
    """Tasks published from this process go to Redis (not eager); put everything back after."""
    from storefront.celery import app

    broker = worker_broker_url()
    saved_conf = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    saved_env = os.environ.get("CELERY_BROKER_URL")
    os.environ["CELERY_BROKER_URL"] = broker
    app.conf.update(broker_url=broker, task_always_eager=False)
    forget_connections(app)
    purge_queue(app)
    try:
        yield broker
    finally:
        purge_queue(app)
        # A killed worker leaves its message unacknowledged; never let it come back in a later run.
        with app.connection_for_write() as conn:
            conn.default_channel.client.delete("unacked", "unacked_index", "unacked_mutex")
        app.conf.update(saved_conf)
        forget_connections(app)
        if saved_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved_env


class WorkerProcess:
    """One `celery worker` process group; its log is kept in `lines`."""

    def __init__(self, *, live_url: str, env: dict[str, str] | None = None, command: list[str] | None = None) -> None:
        broker = worker_broker_url()
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
        db = connection.settings_dict
        credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        address = (db.get("HOST") or "127.0.0.1") + (f":{db['PORT']}" if db.get("PORT") else "")
        environ.update(
            DJANGO_SETTINGS_MODULE="storefront.settings",
            TOKENSTORE_IGNORE_DOTENV="1",
            DATABASE_URL=f"postgres://{credentials}@{address}/{db['NAME']}",
            REDIS_URL=broker,
            CELERY_BROKER_URL=broker,
            CELERY_TASK_ALWAYS_EAGER="0",
            SITE_URL=live_url,
            ALLOWED_HOSTS="*",
            OPENROUTER_API_URL=live_url + "/sandbox/openrouter/api/v1",
            KRYPTO_EXPRESS_API_URL=live_url + "/sandbox/kryptoexpress/api",
            EMAIL_URL="consolemail://",
            CONN_MAX_AGE="0",
        )
        environ.pop("CACHE_URL", None)
        environ.update(env or {})
        args = [sys.executable, "-m", "celery", "-A", "storefront", *(command or [
            "worker", "-P", "prefork", "-c", "1", "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-l", "INFO", "-n", f"test-{os.getpid()}-{time.monotonic_ns()}@%h"])]
        self.lines: list[str] = []
        self.proc = subprocess.Popen(args, cwd=ROOT, env=environ, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(" ready." in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("worker did not start:\n" + "\n".join(self.lines[-40:]))
            time.sleep(0.1)

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def kill_child(self) -> int:
        """SIGKILL the pool process (what the OOM killer does to a busy child)."""
        (child,) = self.children()
        os.kill(child, signal.SIGKILL)
        return child

    def kill_all(self) -> None:
        """SIGKILL the whole worker (main process and children) — a lost machine."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill_all()


@contextmanager
def worker_process(**kwargs) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(**kwargs)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()
