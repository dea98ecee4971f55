"""Fixtures shared by the orders suites."""

from __future__ import annotations

from unittest import mock

import pytest

from tests.orders.checkout_support import mocked_gateway


@pytest.fixture
def machine_settings(settings):
    """Fast hashing and short, fixed fulfilment timings for the hypothesis state machines."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.FULFIL_RETRY_BASE_SECONDS = 1
    settings.FULFIL_MAX_ATTEMPTS = 4
    settings.FULFIL_STUCK_AFTER_SECONDS = 300
    settings.FULFIL_REQUEUE_AFTER_SECONDS = 120
    return settings


@pytest.fixture
def fulfil_delay():
    """The fulfil task's `.delay`, mocked: the test sees what would be enqueued and nothing runs.

    Suites that must never start a fulfilment mark themselves `usefixtures("fulfil_delay")`.
    """
    with mock.patch("orders.tasks.fulfil_order.delay") as delay:
        yield delay


@pytest.fixture
def gateway(settings):
    """The payment gateway, answered by `responses`: serve what a test needs (see checkout_support)."""
    with mocked_gateway(settings) as rsps:
        yield rsps
