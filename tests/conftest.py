"""Fixtures shared by every suite."""

from __future__ import annotations

import threading

import pytest
from celery._state import _set_task_join_will_block
from django.conf import settings
from django.core.cache import cache

from storefront.batched_rate_limit import batched_rate_limits_forget
from storefront.catalogue_version import catalogue_version_local_changed
from tests.factories import AIModelFactory, StaffFactory, UserFactory

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
needs_postgres = pytest.mark.skipif(not ON_POSTGRES, reason="needs PostgreSQL (set DATABASE_URL)")
needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (set REDIS_URL)")


@pytest.fixture(autouse=True)
def _celery_may_join_results():
    """Celery keeps "a task is running here" in one process-wide flag, which eager tasks run from two
    threads at once (a live server's request thread and the test's) can leave set: every later
    `.get()` in this process would then refuse. Each test starts from a clean flag."""
    _set_task_join_will_block(False)
    yield


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    catalogue_version_local_changed()  # no process copy of the last test's catalogue is reused
    batched_rate_limits_forget()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _release_live_server_connections(request):
    """A kept-alive client socket to live_server pins a server thread and its DB session.

    After a live-server test, close this thread's pooled OpenRouter connections and let the
    server's request threads finish, so PostgreSQL can drop the test database at the end.
    """
    yield
    if "live_server" not in request.fixturenames:
        return
    from openrouter.client import close_shared_session

    close_shared_session()
    for thread in threading.enumerate():
        if "process_request_thread" in thread.name:
            thread.join(timeout=3)


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
