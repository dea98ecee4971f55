"""The batched gunicorn access log: one short line per request, nothing lost on flush."""

from __future__ import annotations

import datetime
import io
import time
from types import SimpleNamespace

from gunicorn.config import Config

from storefront.access_log import BatchedAccessLogger


def test_lines_are_batched_then_flushed_with_the_fields_people_read(tmp_path):
    # given
    cfg = Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    logger = BatchedAccessLogger(cfg)
    stream = io.StringIO()
    logger._stream = stream
    response = SimpleNamespace(status="200 OK", sent=1234, headers=[])
    environ = {
        "REMOTE_ADDR": "127.0.0.1", "REQUEST_METHOD": "GET", "RAW_URI": "/api/quote?tokens=1000",
        "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_COOKIE": "sessionid=secret",
    }
    # when
    logger.access(response, None, environ, datetime.timedelta(milliseconds=3))
    written_before_flush = stream.getvalue()
    logger.flush_access_log()
    # then
    line = stream.getvalue()
    assert written_before_flush == ""
    assert line.startswith("127.0.0.1 - - [")
    assert '"GET /api/quote?tokens=1000 HTTP/1.1" 200 1234 3.0ms\n' in line
    assert "secret" not in line  # headers and cookies are never logged


def test_a_second_is_enough_for_a_line_to_appear(tmp_path):
    cfg = Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    logger = BatchedAccessLogger(cfg)
    response = SimpleNamespace(status="404 Not Found", sent=None, headers=[])
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/nope", "SERVER_PROTOCOL": "HTTP/1.1"}
    logger.access(response, None, environ, datetime.timedelta(milliseconds=1))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "/nope" not in (tmp_path / "access.log").read_text():
        time.sleep(0.1)
    assert '"GET /nope HTTP/1.1" 404 -' in (tmp_path / "access.log").read_text()
