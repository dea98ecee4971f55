from decimal import Decimal

from django.conf import settings


def test_money_settings_are_decimal():
    assert settings.MAX_ORDER_USD == Decimal("20.00")
    assert settings.MARKUP_RATE == Decimal("0.20")
    assert settings.MIN_ORDER_USD == Decimal("1.00")
    assert settings.MIN_TOKENS == 100


def test_tests_run_in_sandbox():
    assert settings.SANDBOX is True
    assert settings.OPENROUTER_API_KEY == "sandbox-management-key"
