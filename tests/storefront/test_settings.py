"""Settings: Decimal business rules, and the server refusing to start half-configured."""

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def test_money_settings_are_decimal():
    assert settings.MAX_ORDER_USD == Decimal("20.00")
    assert settings.MARKUP_RATE == Decimal("0.20")
    assert settings.MIN_ORDER_USD == Decimal("1.00")
    assert settings.MIN_TOKENS == 100


def test_tests_run_in_sandbox():
    assert settings.SANDBOX is True
    assert settings.OPENROUTER_API_KEY == "sandbox-management-key"
    assert settings.KRYPTO_EXPRESS_API_KEY == "sandbox-api-key"


def _load_settings(**overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEBUG", "SANDBOX", "OPENROUTER", "KRYPTO"))}
    env.update({"TOKENSTORE_IGNORE_DOTENV": "1", "TOKENSTORE_DEV": "0", **overrides})
    code = "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='storefront.settings'; django.setup(); " \
           "from django.conf import settings as s; print(s.SANDBOX, s.OPENROUTER_API_URL)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "overrides",
    [
        {"DEBUG": "0", "SECRET_KEY": "x" * 60, "FIELD_ENCRYPTION_KEYS": "a" * 43 + "="},
        {"DEBUG": "0", "SECRET_KEY": "x" * 60, "OPENROUTER_API_KEY": "sk-or-real"},
        {"DEBUG": "1", "SANDBOX": "false"},
    ],
    ids=["production-without-credentials", "production-half-configured", "sandbox-off-without-credentials"],
)
def test_refuses_to_start_half_configured(overrides):
    result = _load_settings(**overrides)
    assert result.returncode != 0
    assert "half-configured" in result.stderr
    assert "sk-or-real" not in result.stderr


def test_production_never_falls_into_the_sandbox_by_accident():
    result = _load_settings(
        DEBUG="0", SECRET_KEY="x" * 60, OPENROUTER_API_KEY="sk-or-real", KRYPTO_EXPRESS_API_KEY="ke-real",
        FIELD_ENCRYPTION_KEYS="a" * 43 + "=",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "https://openrouter.ai/api/v1"]


def test_sandbox_can_be_forced_in_production_mode():
    result = _load_settings(DEBUG="0", SECRET_KEY="x" * 60, SANDBOX="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "True"
    assert "/sandbox/openrouter/api/v1" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # Money rule 3: a markup above 20% (or a minimum the gateway refuses) stops the server.
        ({"MARKUP_RATE": "0.25"}, "MARKUP_RATE"),
        ({"MARKUP_RATE": "-0.10"}, "MARKUP_RATE"),
        ({"MIN_ORDER_USD": "0.50"}, "MIN_ORDER_USD"),
        ({"MIN_ORDER_USD": "25.00"}, "MIN_ORDER_USD"),
        # Tuning that would only fail later, on a request or in a worker, fails at start-up instead.
        ({"ORDER_RATE_LIMIT": "ten an hour"}, "ORDER_RATE_LIMIT"),
        ({"QUOTE_RATE_LIMIT": "300"}, "QUOTE_RATE_LIMIT"),
        ({"LOGIN_RATE_LIMIT": "0/m"}, "LOGIN_RATE_LIMIT"),
        ({"SIGNUP_RATE_LIMIT": "20/w"}, "SIGNUP_RATE_LIMIT"),
        ({"PASSWORD_RESET_RATE_LIMIT": "5/h; 1000/s"}, "PASSWORD_RESET_RATE_LIMIT"),
        ({"FULFIL_MAX_ATTEMPTS": "0"}, "FULFIL_MAX_ATTEMPTS"),
        ({"FULFIL_RETRY_BASE_SECONDS": "0"}, "FULFIL_RETRY_BASE_SECONDS"),
        ({"FULFIL_RETRY_BASE_SECONDS": "600", "FULFIL_RETRY_MAX_SECONDS": "300"}, "FULFIL_RETRY_MAX_SECONDS"),
    ],
    ids=[
        "markup-raised", "markup-negative", "min-under-gateway-floor", "min-over-cap",
        "rate-words", "rate-no-period", "rate-zero", "rate-unknown-unit", "rate-trailing-text",
        "no-attempts", "no-backoff", "backoff-over-cap",
    ],
)
def test_settings_that_break_a_rule_stop_the_server_at_start_up(overrides, message):
    result = _load_settings(DEBUG="1", SANDBOX="true", **overrides)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_a_lower_markup_is_allowed():
    result = _load_settings(DEBUG="1", SANDBOX="true", MARKUP_RATE="0.15")
    assert result.returncode == 0, result.stderr


def test_rates_with_a_multiplier_are_accepted():
    result = _load_settings(DEBUG="1", SANDBOX="true", QUOTE_RATE_LIMIT="100/5m", FULFIL_MAX_ATTEMPTS="1")
    assert result.returncode == 0, result.stderr
