"""Web speed benchmark: the store's hot pages beside a bare Django app, under a real load generator.

Run with `make bench` (or `RUN_BENCH=1 pytest tests/bench/bench_web.py -s -p no:xdist`).

For each configuration it starts, as separate processes with the web flags of the `Procfile`
(gunicorn 2 workers × 8 threads, access log on):
- a bare Django "hello" app (`tests/bench/hello_wsgi.py`: no middleware, no database);
- the store, on its own database and cache, seeded and synced like `make run` does;
- a second store process serving only as the KryptoExpress gateway sandbox (checkout's remote call).
Then `wrk -t2 -c16` drives each page for `BENCH_SECONDS` (10 s), alternating 5-second slices
with the hello app, and prints req/s, p50/p99 latency and the ratio page ÷ hello of that pair.
Ratios, not absolute numbers, are what count: the machine may be shared and noisy.

Configurations:
- "make run": DEBUG on, SQLite, the file cache;
- "production": DEBUG off, PostgreSQL and Redis (`REDIS_URL`) — on a new `test_<name>_web`
  database beside `DATABASE_URL`'s, dropped and created each run; skipped with a note when
  those are not set. Both keep the sandboxes (there are no real credentials here).

Targets: ≥ 0.5× hello for the catalogue (anonymous and signed in), `/api/quote`,
`/api/catalogue` and the order page's status fragment (a URL that does not exist on this branch is
reported "not present", not counted); and checkout (`POST /orders/`) keeps p95 < 500 ms while
the catalogue is under full load. Ports 8140-8149 on 127.0.0.1 only (`BENCH_PORT_BASE`);
`BENCH_WEB_ONLY=production` (or `make run`) runs one configuration.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.bench.marks import BENCH_MARKS

pytestmark = BENCH_MARKS

BASE_DIR = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
# Each page's seconds are split into alternating hello / page slices, and the ratio is the median
# of the slices' ratios: a burst of load from elsewhere lands on one pair, not on the result.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
PORT_BASE = int(os.environ.get("BENCH_PORT_BASE", "8140"))
HOST = "127.0.0.1"
TARGET_RATIO = 0.5
CHECKOUT_P95_MS = 500
MODEL = "anthropic/claude-3-sonnet"
TOKENS = 500_000  # $5.40 of Claude 3 Sonnet at the sandbox's prices: a valid order


def _wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        # Debian's package; the bench needs a real load generator, not a Python loop.
        subprocess.run(["sudo", "-n", "apt-get", "install", "-y", "-q", "wrk"], check=False)
        path = shutil.which("wrk")
    if path is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    return path


def procfile_gunicorn_flags() -> list[str]:
    """The web process's gunicorn flags from the Procfile, without its --bind (the bench picks ports)."""
    line = next(
        line for line in (BASE_DIR / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    argv = shlex.split(line.split("gunicorn", 1)[1])
    flags, skip = [], False
    for arg in argv[1:]:  # argv[0] is the WSGI application
        if skip:
            skip = False
        elif arg in ("--bind", "-b"):
            skip = True
        elif not arg.startswith("--bind="):
            flags.append(arg)
    return flags


@dataclass
class Result:
    name: str
    status: str = ""
    present: bool = True
    # Page req/s over hello req/s for each alternating slice; the page's ratio is their median.
    pair_ratios: tuple[float, ...] = ()
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    hello_rps: float = 0.0
    errors: int = 0

    @property
    def ratio(self) -> float:
        return statistics.median(self.pair_ratios) if self.pair_ratios else 0.0


_LATENCY = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, headers: dict[str, str] | None = None, seconds: float = SECONDS) -> dict:
    # A slow answer is latency, not an error: wrk's default 2-second timeout would count it as one.
    argv = [_wrk(), "-t2", "-c16", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "30s"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {pct: _ms(value, unit) for pct, value, unit in _LATENCY.findall(out)}
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return {"rps": rps, "p50": latency.get("50", 0.0), "p99": latency.get("99", 0.0), "errors": errors}


class Servers:
    """The processes one configuration needs; each started in its own session and stopped by its id."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.procs: list[subprocess.Popen] = []

    def manage(self, *args: str, extra_env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def gunicorn(self, app: str, port: int, name: str, extra_env: dict[str, str] | None = None) -> None:
        log = (self.workdir / f"{name}.log").open("w")
        argv = [
            sys.executable, "-m", "gunicorn", app, "--bind", f"{HOST}:{port}", *procfile_gunicorn_flags(),
            # gunicorn's control socket has one default path per machine: keep clear of other servers.
            "--no-control-socket",
        ]
        proc = subprocess.Popen(
            argv, cwd=BASE_DIR, env={**self.env, **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {(self.workdir / f'{name}.log').read_text()[-3000:]}")
            try:
                with socket.create_connection((HOST, port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{name} did not start on port {port}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # the session this bench started for it
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


def configurations() -> list[tuple[str, dict[str, str] | None, str]]:
    """(name, settings environment or None when unavailable, why unavailable)."""
    store = f"http://{HOST}:{PORT_BASE + 1}"
    common = {
        "TOKENSTORE_IGNORE_DOTENV": "1",
        "SANDBOX": "true",
        "PORT": str(PORT_BASE + 1),
        "SITE_URL": store,
        # The gateway sandbox runs in its own process, as the real gateway would.
        "KRYPTO_EXPRESS_API_URL": f"http://{HOST}:{PORT_BASE + 2}/sandbox/kryptoexpress/api",
        # Many checkouts by one bench user in a few seconds.
        "ORDER_RATE_LIMIT": "100000/h",
        "MAX_UNPAID_ORDERS_PER_USER": "100000",
        # wrk is one address standing for a crowd of many: the per-address quote limit still runs
        # (its cost is measured), it just never trips.
        "QUOTE_RATE_LIMIT": "100000000/m",
        "LOG_LEVEL": "WARNING",
    }
    configs: list[tuple[str, dict[str, str] | None, str]] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    configs.append(
        (
            "make run (DEBUG on, SQLite, file cache)",
            {
                **common,
                "DEBUG": "1",
                "DATABASE_URL": f"sqlite:///{workdir / 'store.sqlite3'}",
                "CACHE_URL": f"filecache://{workdir / 'cache'}",
            },
            "",
        )
    )
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if database_url.startswith("postgres") and redis_url:
        database_url = _fresh_postgres_database(database_url)
        production = {
            **common,
            "DEBUG": "0",
            "SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            # TLS ends at the proxy in production; the bench talks plain HTTP to gunicorn.
            "SECURE_SSL_REDIRECT": "0",
            # There are no real credentials here: the sandboxes serve as the remote services, which
            # a store with DEBUG off only accepts as a declared demo (`manage.py check`).
            "SANDBOX_PUBLIC_DEMO": "1",
        }
        configs.append(("production (DEBUG off, PostgreSQL, Redis)", production, ""))
    else:
        configs.append(("production (DEBUG off, PostgreSQL, Redis)", None, "set DATABASE_URL (postgres) and REDIS_URL"))
    return configs


def _fresh_postgres_database(url: str) -> str:
    """A new, empty `test_<name>_web` database beside DATABASE_URL's (never DATABASE_URL's own data).

    Every run starts from nothing, as the SQLite configuration does: orders left by an earlier
    run would otherwise count against the OpenRouter sandbox's balance and turn checkout away.
    """
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(url)
    name = "test_" + parts.path.lstrip("/") + "_web"
    conn = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return urlunsplit(parts._replace(path="/" + name))


SESSION_SNIPPET = """
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
user, _ = get_user_model().objects.get_or_create(email="bench-web@example.com")
store = import_module(settings.SESSION_ENGINE).SessionStore()
store[SESSION_KEY] = str(user.pk)
store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
store[HASH_SESSION_KEY] = user.get_session_auth_hash()
store.create()
print(settings.SESSION_COOKIE_NAME + "=" + store.session_key)
"""


CREDITS_SNIPPET = """
from decimal import Decimal
from openrouter.sandbox.keys import sandbox_set_credits
sandbox_set_credits(total_credits=Decimal("1000000.00"))
"""


class Shopper:
    """A signed-in customer driving checkout over HTTP (cookies sent by hand: they are Secure in production)."""

    def __init__(self, base: str, session_cookie: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.trust_env = False
        # The review page carries the checkout form (and so the CSRF cookie), as in a browser.
        response = self.http.get(
            base + "/orders/new/",
            params={"model": MODEL, "tokens": TOKENS, "crypto": "BTC"},
            headers={"Cookie": session_cookie},
            timeout=30,
        )
        csrf = response.cookies.get("csrftoken")
        if csrf is None:
            match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text)
            csrf = match.group(1) if match else ""
        self.csrf = csrf
        self.cookie = f"{session_cookie}; csrftoken={csrf}"

    def quote_total(self) -> str:
        answer = self.http.get(
            self.base + "/api/quote", params={"model": MODEL, "tokens": TOKENS, "crypto": "BTC"}, timeout=30
        ).json()
        return answer["total_usd_cost"]

    def checkout(self, total: str) -> tuple[float, requests.Response]:
        started = time.perf_counter()
        response = self.http.post(
            self.base + "/orders/",
            data={
                "model": MODEL, "tokens": TOKENS, "crypto": "BTC", "seen_total": total,
                "idempotency_key": str(uuid.uuid4()), "csrfmiddlewaretoken": self.csrf,
            },
            headers={"Cookie": self.cookie, "Origin": self.base, "Referer": self.base + "/"},
            allow_redirects=False,
            timeout=60,
        )
        return (time.perf_counter() - started) * 1000, response


def _measure(name: str, hello_url: str, url: str, headers: dict[str, str] | None = None) -> Result:
    """Hello and page in alternating slices, so a burst of load from elsewhere hits both alike."""
    hellos, pages = [], []
    for _ in range(ROUNDS):
        hellos.append(run_wrk(hello_url, seconds=SECONDS / ROUNDS))
        pages.append(run_wrk(url, headers, seconds=SECONDS / ROUNDS))
    return Result(
        name=name,
        rps=statistics.mean(p["rps"] for p in pages),
        p50_ms=statistics.median(p["p50"] for p in pages),
        p99_ms=max(p["p99"] for p in pages),
        hello_rps=statistics.mean(h["rps"] for h in hellos),
        errors=sum(p["errors"] for p in pages),
        pair_ratios=tuple(p["rps"] / h["rps"] for p, h in zip(pages, hellos, strict=True) if h["rps"]),
    )


def bench_configuration(name: str, env: dict[str, str]) -> tuple[list[Result], dict]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    servers = Servers(workdir, {**_base_env(), **env})
    hello_url = f"http://{HOST}:{PORT_BASE}/"
    store = f"http://{HOST}:{PORT_BASE + 1}"
    try:
        servers.manage("migrate", "--noinput")
        servers.manage("seed_packages")
        # Checkout reserves OpenRouter credit for every unpaid order: give the sandbox account enough
        # for the hundreds of orders a bench places (its default $100 turns checkout away with a 503).
        servers.manage("shell", "-c", CREDITS_SNIPPET)
        if env.get("DEBUG") == "0":
            servers.manage("collectstatic", "--noinput", "--verbosity", "0")
        servers.gunicorn("tests.bench.hello_wsgi:application", PORT_BASE, "hello")
        servers.gunicorn("storefront.wsgi", PORT_BASE + 2, "gateway")
        servers.gunicorn("storefront.wsgi", PORT_BASE + 1, "store")
        servers.manage("warm_up")  # catalogue sync and crypto rates, as `make run` does
        session_cookie = servers.manage("shell", "-c", SESSION_SNIPPET).strip().splitlines()[-1]
        shopper = Shopper(store, session_cookie)
        _elapsed, placed = shopper.checkout(shopper.quote_total())
        assert placed.status_code == 302, f"checkout answered {placed.status_code}: {placed.text[:500]}"
        order_url = placed.headers["Location"]
        # A signed-in visitor's browser carries the CSRF cookie it got with the sign-in form.
        signed_in = {"Cookie": shopper.cookie}

        results = []
        # (name, path, headers, polled: a poller sends If-None-Match once it has the answer)
        pages = [
            ("catalogue /, anonymous", "/", {}, False),
            ("catalogue /, signed in", "/", signed_in, False),
            ("GET /api/quote", f"/api/quote?model={MODEL}&tokens={TOKENS}&crypto=BTC", {}, False),
            ("GET /api/catalogue", "/api/catalogue", {}, False),
            ("order status fragment", order_url.rstrip("/") + "/status/", signed_in, True),
        ]
        for page_name, path, headers, polled in pages:
            servers.manage("warm_up", "--wait", "5")  # keep the 60-second crypto rates fresh, between runs
            probe = requests.get(store + path, headers=headers, timeout=30)
            if probe.status_code == 404:
                results.append(Result(name=page_name, present=False, status="not present on this branch"))
                continue
            headers = dict(headers)
            status = str(probe.status_code)
            if polled and probe.headers.get("ETag"):
                headers["If-None-Match"] = probe.headers["ETag"]
                status = f"{requests.get(store + path, headers=headers, timeout=30).status_code} (If-None-Match)"
            result = _measure(page_name, hello_url, store + path, headers)
            result.status = status
            results.append(result)
            print(f"  {page_name}: {result.rps:,.0f} req/s, {result.ratio:.2f}× hello", flush=True)

        servers.manage("warm_up", "--wait", "5")  # fresh crypto rates for the checkout run too
        checkout = _checkout_under_load(shopper, store)
        return results, checkout
    finally:
        servers.stop()


def _checkout_under_load(shopper: Shopper, store: str) -> dict:
    """Checkouts, one after another, while wrk keeps the anonymous catalogue at full load."""
    total = shopper.quote_total()
    load = threading.Thread(target=run_wrk, args=(store + "/",), kwargs={"seconds": SECONDS + 4})
    load.start()
    time.sleep(1.5)
    timings, statuses = [], []
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        elapsed, response = shopper.checkout(total)
        timings.append(elapsed)
        statuses.append(response.status_code)
    load.join()
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    return {"count": len(timings), "p50": statistics.median(timings), "p95": p95, "statuses": sorted(set(statuses))}


def _table(name: str, results: list[Result], checkout: dict) -> str:
    lines = [
        f"\n{name} — gunicorn {' '.join(procfile_gunicorn_flags())}, wrk -t2 -c16, {SECONDS} s a page in "
        f"{ROUNDS} hello/page pairs",
        "| page | req/s | p50 ms | p99 ms | hello req/s | ratio (median of pairs) | status |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if not r.present:
            lines.append(f"| {r.name} | — | — | — | — | — | {r.status} |")
            continue
        verdict = "ok" if r.ratio >= TARGET_RATIO and not r.errors else "BELOW TARGET" if not r.errors else "ERRORS"
        lines.append(
            f"| {r.name} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.hello_rps:,.0f} | "
            f"{r.ratio:.2f}× | {r.status} {verdict} |"
        )
    lines.append(
        f"| checkout POST /orders/ under catalogue load | {checkout['count']} orders | {checkout['p50']:.0f} | "
        f"p95 {checkout['p95']:.0f} | — | — | {checkout['statuses']} "
        f"{'ok' if checkout['p95'] < CHECKOUT_P95_MS else 'OVER 500 ms'} |"
    )
    return "\n".join(lines)


@pytest.mark.timeout(3600)
def test_store_pages_keep_up_with_bare_django():
    failures = []
    only = os.environ.get("BENCH_WEB_ONLY", "")  # e.g. "production" or "make run"
    for name, env, why_not in configurations():
        if only and only not in name:
            continue
        if env is None:
            print(f"\n{name}: skipped ({why_not})")
            continue
        results, checkout = bench_configuration(name, env)
        print(_table(name, results, checkout))
        for r in results:
            if r.present and (r.errors or r.ratio < TARGET_RATIO):
                failures.append(f"{name}: {r.name} {r.ratio:.2f}× hello, {r.errors} errors")
        if checkout["p95"] >= CHECKOUT_P95_MS or checkout["statuses"] != [302]:
            failures.append(f"{name}: checkout p95 {checkout['p95']:.0f} ms, statuses {checkout['statuses']}")
    assert not failures, "\n".join(failures)
