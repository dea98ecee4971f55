"""The PostgreSQL health check: no round trip for a sound connection, a new one for a dropped one."""

from __future__ import annotations

import select

import psycopg2
import pytest
from django.db import close_old_connections, connection
from django.db.backends.postgresql.base import DatabaseWrapper as DjangosWrapper
from django.test.utils import CaptureQueriesContext

from orders.models import AITokenOrder
from tests.conftest import needs_postgres
from tests.factories import OrderFactory
from tests.spies import spy_on

pytestmark = [needs_postgres, pytest.mark.django_db(transaction=True)]


def _new_request() -> None:
    """What Django does between two requests: health checks are due again."""
    close_old_connections()


@pytest.fixture
def full_checks(monkeypatch):
    """Counts Django's own `SELECT 1` checks."""
    return spy_on(monkeypatch, DjangosWrapper, "is_usable")


def test_the_store_runs_on_this_backend():
    assert connection.settings_dict["ENGINE"] == "storefront.postgresql"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_sound_connection_is_reused_without_a_select_1(full_checks):
    order = OrderFactory()
    before = connection.connection
    for _ in range(3):
        _new_request()
        with CaptureQueriesContext(connection) as queries:
            assert AITokenOrder.objects.get(pk=order.pk) == order
        assert len(queries) == 1
    assert connection.connection is before  # persisted, not reopened
    assert full_checks == []


def test_a_connection_the_server_dropped_is_replaced_before_the_query(full_checks):
    order = OrderFactory()
    pid = connection.connection.get_backend_pid()
    admin = psycopg2.connect(**connection.get_connection_params())
    try:
        admin.autocommit = True
        with admin.cursor() as cursor:  # a restart or an idle timeout looks like this to the client
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            assert cursor.fetchone() == (True,)
    finally:
        admin.close()
    # the backend exits a moment after the signal; a real drop happened before the request came
    assert select.select([connection.connection.fileno()], [], [], 10)[0], "the server never closed it"
    _new_request()
    # no error reaches the request: the dropped connection is noticed and a new one opened
    assert AITokenOrder.objects.get(pk=order.pk) == order
    assert connection.connection.get_backend_pid() != pid
    assert full_checks, "a readable socket gets Django's full check"


def test_a_closed_connection_is_not_usable():
    connection.ensure_connection()
    connection.connection.close()
    assert connection.is_usable() is False
    connection.close()  # let Django forget it
