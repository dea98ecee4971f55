"""Unsafe configurations make `manage.py check` (and so `migrate`, `runserver`, `make run`) fail."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from storefront.checks import check_unsafe_configuration, sandbox_permitted
from tests.storefront.test_security import production_env, run_manage


def sandbox_env(**overrides: str) -> dict[str, str]:
    """A development machine: DEBUG on, both sandboxes, no real credentials."""
    env = production_env(DEBUG="1", SANDBOX="true", OPENROUTER_API_KEY="", KRYPTO_EXPRESS_API_KEY="",
                         FIELD_ENCRYPTION_KEYS="", SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="0",
                         SITE_URL="http://127.0.0.1:8000", ALLOWED_HOSTS="127.0.0.1",
                         SANDBOX_PUBLIC_DEMO="false")
    env.update(overrides)
    return env


def assert_refused(result, *names: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for name in names:
        assert name in output, output


def test_production_settings_and_the_plain_sandbox_pass():
    assert run_manage("check", "--fail-level", "WARNING", env=production_env()).returncode == 0
    # Warnings count too: a URL or model warning is a mistake nobody reads in a start-up log.
    result = run_manage("check", "--fail-level", "WARNING", env=sandbox_env())
    assert result.returncode == 0, result.stdout + result.stderr


VALID_KEY = "A" * 43 + "="  # 32 zero bytes, url-safe base64: a valid (if silly) Fernet key


@pytest.mark.parametrize("keys", ["notakey", VALID_KEY + ",notakey", " "])
def test_invalid_fernet_keys_are_refused(keys):
    result = run_manage("check", env=production_env(FIELD_ENCRYPTION_KEYS=keys))
    assert_refused(result, "FIELD_ENCRYPTION_KEYS")
    assert "notakey" not in result.stdout + result.stderr  # the value itself is never echoed


@pytest.mark.parametrize("name", ["OPENROUTER_API_KEY", "KRYPTO_EXPRESS_API_KEY"])
def test_whitespace_credentials_count_as_missing(name):
    assert_refused(run_manage("check", env=production_env(**{name: "   "})), name)


@pytest.mark.parametrize(
    "overrides, name",
    [
        ({"OPENROUTER_API_KEY": "sk-or-v1-" + "a" * 64}, "OPENROUTER_API_KEY"),
        ({"OPENROUTER_API_URL": "https://openrouter.ai/api/v1"}, "OPENROUTER_API_URL"),
        ({"KRYPTO_EXPRESS_API_KEY": "b" * 48}, "KRYPTO_EXPRESS_API_KEY"),
        ({"KRYPTO_EXPRESS_API_URL": "https://kryptoexpress.pro/api"}, "KRYPTO_EXPRESS_API_URL"),
    ],
)
def test_the_sandbox_beside_a_real_service_is_refused(overrides, name):
    assert_refused(run_manage("check", env=sandbox_env(**overrides)), "SANDBOX", name)


def test_the_sandbox_with_debug_off_needs_the_public_demo_opt_in():
    # The repro: DEBUG=0 SANDBOX=true with real OpenRouter settings.
    real = {"OPENROUTER_API_KEY": "sk-or-v1-" + "c" * 64}
    assert_refused(run_manage("check", env=sandbox_env(DEBUG="0", **real)), "SANDBOX_PUBLIC_DEMO",
                   "OPENROUTER_API_KEY")
    assert_refused(run_manage("check", env=sandbox_env(DEBUG="0")), "SANDBOX_PUBLIC_DEMO")
    demo = run_manage("check", env=sandbox_env(DEBUG="0", SANDBOX_PUBLIC_DEMO="true"))
    assert demo.returncode == 0, demo.stdout + demo.stderr


def test_the_control_page_is_not_routed_when_the_sandbox_is_unsafe():
    script = (
        "import django; django.setup(); from django.urls import reverse, NoReverseMatch\n"
        "try:\n    reverse('kryptoexpress_sandbox:control', args=['x']); print('ROUTED')\n"
        "except NoReverseMatch:\n    print('NOT ROUTED')\n"
    )
    import subprocess
    import sys

    from tests.storefront.test_security import ROOT

    def routed(env):
        out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
                             timeout=120)
        return out.stdout.strip().splitlines()[-1]

    assert routed(sandbox_env()) == "ROUTED"
    assert routed(sandbox_env(DEBUG="0")) == "NOT ROUTED"
    assert routed(sandbox_env(OPENROUTER_API_KEY="sk-or-v1-" + "d" * 64)) == "NOT ROUTED"


def test_the_valid_key_above_is_valid():
    Fernet(VALID_KEY.encode())


def test_the_check_reads_current_settings(settings):
    # given both sandboxes (pytest-django turns DEBUG off, so the tests opt in as a public demo)
    assert check_unsafe_configuration() == []
    assert sandbox_permitted()
    # when OpenRouter is pointed at the real service
    settings.OPENROUTER_API_URL = "https://openrouter.ai/api/v1"
    # then
    assert [e.id for e in check_unsafe_configuration()] == ["storefront.E003"]
    assert not sandbox_permitted()
    # and without the opt-in, DEBUG off is refused on its own
    settings.OPENROUTER_API_URL = "http://127.0.0.1:8000/sandbox/openrouter/api/v1"
    settings.SANDBOX_PUBLIC_DEMO = False
    assert [e.id for e in check_unsafe_configuration()] == ["storefront.E004"]
