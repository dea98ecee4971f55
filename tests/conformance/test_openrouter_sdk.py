"""The official OpenRouter SDK calls every OpenRouter sandbox endpoint the store uses and parses each answer.

Catalogue, credits, and keys list / get / create / patch (disabled) / delete, over real HTTP
against live_server. The SDK runs in its own interpreter (see openrouter_sdk_calls.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from openrouter.sandbox.keys import sandbox_set_credits
from openrouter.sandbox.models import SandboxKey

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
SCRIPT = Path(__file__).with_name("openrouter_sdk_calls.py")


def run_sdk(base_url: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), base_url, settings.SANDBOX_OPENROUTER_KEY],
        cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": tempfile.gettempdir()},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


def test_the_official_sdk_parses_every_answer(live_server):
    # given an account with credits
    sandbox_set_credits(total_credits=Decimal("100"), total_usage=Decimal("12.5"))
    # when the SDK calls every endpoint the store uses
    seen = run_sdk(live_server.url + "/sandbox/openrouter/api/v1")
    # then each answer parsed into the SDK's models, with the sandbox's values
    assert "anthropic/claude-3-sonnet" in {m["id"] for m in seen["models"]}
    assert seen["credits"] == {"total_credits": 100, "total_usage": 12.5}
    created = seen["created"]
    assert created["has_key"] and created["limit"] == 2.5
    assert created["hash"] in seen["listed"]
    assert seen["got"] == {"name": "Token Store TS-conformance0001", "disabled": False}
    assert seen["patched"] == {"disabled": True}
    assert seen["deleted"] is True
    assert not SandboxKey.objects.filter(hash=created["hash"]).exists()
