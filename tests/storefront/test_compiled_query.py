"""The compiled lookup answers exactly what the ORM answers, for any value, on either database."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models.functions import Now

from orders.models import AITokenOrder
from storefront.compiled_query import CompiledLookup
from tests.factories import OrderFactory

FIELDS = ("id", "order_id", "user_id", "status", "total_usd_cost", "created_at", "paid_at", "key_disabled")


def by_order_and_user(order_id, user_id):
    return AITokenOrder.objects.filter(order_id=order_id, user_id=user_id).values(*FIELDS)


@pytest.fixture
def lookup():
    return CompiledLookup(by_order_and_user, order_id=str, user_id=int)


@pytest.mark.django_db
def test_the_row_is_the_orms_row_converters_included(lookup):
    order = OrderFactory()
    AITokenOrder.objects.filter(pk=order.pk).update(paid_at=Now())
    expected = by_order_and_user(order.order_id, order.user_id).get()
    row = lookup.first(order_id=order.order_id, user_id=order.user_id)
    assert row == expected
    assert row["created_at"].tzinfo is not None  # aware datetimes, Decimals: the ORM's converters ran


@pytest.mark.django_db
@pytest.mark.parametrize(
    "order_id",
    ["", "TS-nope", "' OR '1'='1", "TS-\u202e\u0000x", "%", "_", "x" * 10_000, "\\", '"; DROP TABLE x; --'],
)
def test_hostile_values_find_nothing_and_break_nothing(lookup, order_id):
    order = OrderFactory()
    if "\x00" in order_id and connection.vendor == "postgresql":
        pytest.skip("PostgreSQL refuses NUL in text; the views reject it before any query")
    assert lookup.first(order_id=order_id, user_id=order.user_id) is None
    assert lookup.first(order_id=order.order_id, user_id=order.user_id + 1) is None
    assert lookup.first(order_id=order.order_id, user_id=order.user_id)["id"] == order.pk


@pytest.mark.django_db
def test_it_compiles_once_per_database(lookup, monkeypatch, django_assert_num_queries):
    orders = OrderFactory.create_batch(3)
    compiles = []
    original = lookup._compile
    monkeypatch.setattr(lookup, "_compile", lambda using: compiles.append(using) or original(using))
    with django_assert_num_queries(3):
        for order in orders:
            assert lookup.first(order_id=order.order_id, user_id=order.user_id)["order_id"] == order.order_id
    assert compiles == ["default"]


def test_only_strings_and_integers_can_be_compiled():
    with pytest.raises(TypeError):
        CompiledLookup(by_order_and_user, order_id=str, user_id=float)
