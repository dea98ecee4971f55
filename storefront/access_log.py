"""A cheap gunicorn access log: one short line per request, written in batches.

Gunicorn's own access log builds a dictionary of every request header, response header and
WSGI variable for each request and hands it to `logging` (a record, a lock and a flush per
line); under `make run` honcho then relays every line. On a small machine that cost a busy
page a quarter of its throughput. This logger formats the few fields people read — address,
time, request line, status, size, duration — and writes them at most once a second (or when
64 KiB are waiting; a worker that dies loses at most that second). Errors still go through
gunicorn's normal error log, unbuffered.

Used by the `Procfile` (`--logger-class storefront.access_log.BatchedAccessLogger`); it
imports nothing from Django, so any gunicorn app can use it.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from gunicorn.glogging import Logger

FLUSH_SECONDS = 1.0
FLUSH_BYTES = 64 * 1024


class BatchedAccessLogger(Logger):
    """`--access-logfile -` (stdout) or a path; lines flushed at least once a second."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._pending_lock = threading.Lock()
        self._stamp_second = -1
        self._stamp = ""
        target = cfg.accesslog
        self._stream = None
        if target == "-":
            self._stream = sys.stdout
        elif target:
            self._stream = open(target, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the worker
        self._flusher_pid = 0

    def _now(self) -> str:
        second = int(time.time())
        if second != self._stamp_second:  # strftime once a second, not once a request
            self._stamp_second, self._stamp = second, time.strftime("[%d/%b/%Y:%H:%M:%S %z]")
        return self._stamp

    def access(self, resp, req, environ, request_time) -> None:
        if self._stream is None:
            return
        if self._flusher_pid != os.getpid():
            # Set up in the arbiter, used in forked workers: threads do not survive a fork.
            self._flusher_pid = os.getpid()
            threading.Thread(target=self._flush_every_second, name="access-log-flush", daemon=True).start()
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        sent = getattr(resp, "sent", None)
        line = (
            f'{environ.get("REMOTE_ADDR", "-")} - - {self._now()} "{environ["REQUEST_METHOD"]} '
            f'{environ.get("RAW_URI", "")} {environ.get("SERVER_PROTOCOL", "")}" {status} '
            f"{sent if sent is not None else '-'} {request_time.total_seconds() * 1000:.1f}ms\n"
        )
        with self._pending_lock:
            self._pending.append(line)
            self._pending_bytes += len(line)
            full = self._pending_bytes >= FLUSH_BYTES
        if full:
            self.flush_access_log()

    def flush_access_log(self) -> None:
        with self._pending_lock:
            lines, self._pending, self._pending_bytes = self._pending, [], 0
        if lines and self._stream is not None:
            try:
                self._stream.write("".join(lines))
                self._stream.flush()
            except (OSError, ValueError):  # a closed pipe must not take the worker down
                pass

    def _flush_every_second(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush_access_log()
