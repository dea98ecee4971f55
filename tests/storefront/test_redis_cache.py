"""The Redis backend that reuses its client objects behaves as Django's, from any thread."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache, caches

from storefront.redis_cache import RedisCache
from tests.conftest import needs_redis

pytestmark = needs_redis


def test_the_configured_cache_is_ours():
    assert isinstance(caches["default"], RedisCache)


def test_one_client_object_serves_every_call():
    client = cache._cache.get_client("a")
    assert cache._cache.get_client("b") is client
    assert cache._cache.get_client("c", write=True) is client  # one server: one pool, one client


def test_operations_behave_as_djangos_from_many_threads():
    errors = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                key = f"t{n}:{i}"
                assert cache.add(key, i, 30)
                assert not cache.add(key, -1, 30)
                assert cache.get(key) == i
                assert cache.incr(key, 2) == i + 2
                cache.set_many({key + "x": {"n": n}}, 30)
                assert cache.get_many([key, key + "x"]) == {key: i + 2, key + "x": {"n": n}}
                assert cache.delete(key)
        except Exception as exc:  # collected: an assertion in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with pytest.raises(ValueError):
        cache.incr("never-set")
