"""Status polls answered from memory while no order is written, and never longer than that."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from orders import order_epoch
from orders.models import AITokenOrder, OrderStatus
from orders.order_epoch import ORDERS_EPOCH_KEY, StatusRows
from orders.services.transitions import order_transition
from orders.views import order_pages
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db
S = OrderStatus


@pytest.fixture(autouse=True)
def _fresh_rows():
    order_pages._STATUS_ROWS.forget()
    yield
    order_pages._STATUS_ROWS.forget()


def poll(client, order, etag=None):
    extra = {"HTTP_IF_NONE_MATCH": etag} if etag else {}
    return client.get(reverse("orders:status_fragment", kwargs={"order_id": order.order_id}), {"shown": "pending"},
                      **extra)


def written_behind_our_back(order, **values) -> None:
    """A write this process's ORM never saw (raw SQL): what another process's write looks like here."""
    sets = ", ".join(f"{name} = %s" for name in values)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE orders_aitokenorder SET {sets} WHERE id = %s", [*values.values(), order.pk])


def later(monkeypatch, seconds: float) -> None:
    now = order_epoch.time.monotonic()
    monkeypatch.setattr(order_epoch.time, "monotonic", lambda: now + seconds)


@pytest.mark.parametrize(
    "write",
    [
        lambda o: o.save(),
        lambda o: OrderFactory(user=o.user),
        lambda o: AITokenOrder.objects.filter(pk=o.pk).update(reason=""),
        lambda o: AITokenOrder.objects.bulk_update([o], ["reason"]),
        lambda o: AITokenOrder.objects.filter(pk=o.pk).delete(),
        lambda o: o.delete(),
    ],
    ids=["save", "create", "update", "bulk_update", "queryset delete", "delete"],
)
def test_every_orm_write_of_an_order_announces_itself(write):
    order = OrderFactory()
    before = order_epoch._local_changes
    token = cache.get(ORDERS_EPOCH_KEY)
    write(order)
    assert order_epoch._local_changes > before
    assert cache.get(ORDERS_EPOCH_KEY) != token


def test_a_repeated_poll_is_answered_from_memory(user_client, user, django_assert_num_queries):
    order = OrderFactory(user=user)
    etag = poll(user_client, order).headers["ETag"]
    poll(user_client, order, etag)
    with django_assert_num_queries(0):
        response = poll(user_client, order, etag)
    assert response.status_code == 304 and response.headers["ETag"] == etag


def test_a_change_made_in_this_process_is_seen_at_once(user_client, user):
    order = OrderFactory(user=user)
    etag = poll(user_client, order).headers["ETag"]
    assert poll(user_client, order, etag).status_code == 304
    assert order_transition(order=order, from_status=S.PENDING, to_status=S.EXPIRED, source="system", message="t")
    response = poll(user_client, order, etag)
    assert response.status_code == 200 and response.headers["HX-Retarget"] == "#order-main"


def test_a_change_made_elsewhere_is_seen_within_the_recheck_window(user_client, user, monkeypatch):
    order = OrderFactory(user=user)
    etag = poll(user_client, order).headers["ETag"]
    assert poll(user_client, order, etag).status_code == 304
    written_behind_our_back(order, status=S.EXPIRED, updated_at=timezone.now())
    cache.set(ORDERS_EPOCH_KEY, "another-process-wrote", timeout=None)  # its bump on commit
    assert poll(user_client, order, etag).status_code == 304  # at most a second late
    later(monkeypatch, 1.5)
    assert poll(user_client, order, etag).status_code == 200


def test_a_lost_bump_still_ages_out(user_client, user, monkeypatch):
    order = OrderFactory(user=user)
    etag = poll(user_client, order).headers["ETag"]
    written_behind_our_back(order, status=S.EXPIRED, updated_at=timezone.now())  # and nobody said so
    later(monkeypatch, order_epoch.ROW_MAX_AGE_SECONDS + 1)
    assert poll(user_client, order, etag).status_code == 200


def test_with_the_cache_down_every_poll_reads_the_database(user_client, user, monkeypatch,
                                                          django_assert_num_queries):
    order = OrderFactory(user=user)
    etag = poll(user_client, order).headers["ETag"]

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(order_epoch.cache, "get", down)
    monkeypatch.setattr(order_epoch.cache, "add", down)
    order_pages._STATUS_ROWS.forget()
    for _ in range(2):
        with django_assert_num_queries(1):
            assert poll(user_client, order, etag).status_code == 304


def test_a_row_loaded_while_a_write_commits_is_not_kept():
    rows = StatusRows()
    order = OrderFactory()

    def load_while_someone_writes():
        row = {"order_id": order.order_id, "status": "pending"}
        order_epoch.orders_changed()  # a write commits between our read and our keeping it
        return row

    assert rows.load(order.order_id, load_while_someone_writes) is not None
    assert rows.get(order.order_id) is None
    assert rows.load(order.order_id, lambda: {"order_id": order.order_id}) is not None
    assert rows.get(order.order_id) == {"order_id": order.order_id}


def test_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(order_epoch, "MAX_ROWS", 3)
    rows = StatusRows()
    for n in range(10):
        rows.load(f"TS-{n:08d}", lambda n=n: {"n": n})
    assert len(rows._rows) <= 3
