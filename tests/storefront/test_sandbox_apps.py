"""Sandboxes are dev-only apps: installed, routed and migrated only when the sandbox is on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from openrouter import dev_hooks as openrouter_hooks
from payments import dev_hooks as payment_hooks

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_APPS = {"openrouter.sandbox", "payments.sandbox"}


def _manage(*args: str, db: Path, sandbox: bool) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "REDIS_URL", "SANDBOX", "OPENROUTER_", "KRYPTO_EXPRESS_"))
    }
    env.update(
        TOKENSTORE_IGNORE_DOTENV="1",
        DEBUG="1",
        SECRET_KEY="test-secret-key-not-for-production",
        DATABASE_URL=f"sqlite:///{db}",
        SANDBOX="true" if sandbox else "false",
    )
    if not sandbox:
        env.update(OPENROUTER_API_KEY="or-real-looking-key", KRYPTO_EXPRESS_API_KEY="ke-real-looking-key")
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )


def test_tests_run_with_the_sandboxes_installed_and_their_hooks_registered():
    assert SANDBOX_APPS <= set(settings.INSTALLED_APPS)
    assert payment_hooks.payment_control_url("abc") is not None
    assert openrouter_hooks.in_process_client() is not None


def test_switching_the_sandbox_off_on_an_existing_database_migrates_cleanly(tmp_path):
    db = tmp_path / "store.sqlite3"
    # given a database migrated in sandbox mode (sandbox tables included)
    on = _manage("migrate", "--noinput", db=db, sandbox=True)
    assert on.returncode == 0, on.stderr
    assert "kryptoexpress_sandbox" in _manage("showmigrations", db=db, sandbox=True).stdout
    # when the same database is migrated with the sandbox off
    off = _manage("migrate", "--noinput", db=db, sandbox=False)
    # then it succeeds, nothing is left unapplied and no sandbox app is installed or routed
    assert off.returncode == 0, off.stderr
    plan = _manage("migrate", "--plan", db=db, sandbox=False)
    assert plan.returncode == 0 and "No planned migration operations" in plan.stdout, plan.stdout + plan.stderr
    probe = _manage(
        "shell",
        "-c",
        "import json; from django.conf import settings; from django.urls import resolve, Resolver404\n"
        "from payments.dev_hooks import payment_control_url\n"
        "try:\n    resolve('/sandbox/kryptoexpress/api/payment'); routed = True\n"
        "except Resolver404:\n    routed = False\n"
        "print(json.dumps({'apps': settings.INSTALLED_APPS, 'routed': routed, "
        "'link': payment_control_url('abc')}))",
        db=db,
        sandbox=False,
    )
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    assert not SANDBOX_APPS & set(seen["apps"])
    assert seen["routed"] is False and seen["link"] is None
    # and the in-process catalogue seed, which needs the sandbox, says so instead of importing it
    seed = _manage("sync_models", "--in-process", db=db, sandbox=False)
    assert seed.returncode != 0
    assert "needs the OpenRouter sandbox" in seed.stderr
