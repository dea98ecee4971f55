"""Fixtures shared by every suite."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache

from tests.factories import AIModelFactory, StaffFactory, UserFactory

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
needs_postgres = pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL (set DATABASE_URL)")
needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (set REDIS_URL)")


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return StaffFactory()


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def sonnet(db):
    """Claude 3 Sonnet at its real prices, offered."""
    return AIModelFactory(id="anthropic/claude-3-sonnet", name="Anthropic: Claude 3 Sonnet")
