"""The batched limit: exact at the limit, one cache operation per batch far from it, bounded memory."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache

from storefront import batched_rate_limit
from storefront.batched_rate_limit import BATCH, BatchedRateLimit, rate_parse


@pytest.mark.parametrize(("rate", "expected"), [("300/m", (300, 60)), ("10/5m", (10, 300)), ("1/s", (1, 1)),
                                                ("7/h", (7, 3600)), (" 2/d ", (2, 86400))])
def test_rates_parse(rate, expected):
    assert rate_parse(rate) == expected


@pytest.mark.parametrize("rate", ["", "300", "/m", "x/m", "3/w", "-1/m", "3/m/m", "3/m; DROP"])
def test_nonsense_rates_are_refused(rate):
    with pytest.raises(ValueError):
        rate_parse(rate)


@pytest.fixture
def cache_ops(monkeypatch):
    ops = []
    add, incr = cache.add, cache.incr
    monkeypatch.setattr(cache, "add", lambda *a, **k: ops.append("add") or add(*a, **k))
    monkeypatch.setattr(cache, "incr", lambda *a, **k: ops.append("incr") or incr(*a, **k))
    return ops


def test_exact_at_the_limit_in_one_process():
    limit = BatchedRateLimit("test:exact")
    verdicts = [limit.hit("203.0.113.1", "50/m") for _ in range(52)]
    assert verdicts == [False] * 50 + [True, True]
    assert limit.hit("198.51.100.1", "50/m") is False  # another address is not affected


def test_far_from_the_limit_one_cache_operation_per_batch(cache_ops):
    limit = BatchedRateLimit("test:batch")
    for _ in range(BATCH * 20):
        assert limit.hit("203.0.113.2", "100000/m") is False
    assert len(cache_ops) <= 20 + 2  # the window's first hit, then one addition per batch


def test_processes_share_the_count_with_less_than_a_batch_of_slack_each():
    first, second = BatchedRateLimit("test:shared"), BatchedRateLimit("test:shared")  # two processes
    allowed = 0
    for i in range(400):
        if not (first if i % 2 else second).hit("203.0.113.3", "200/m"):
            allowed += 1
    assert 200 <= allowed < 200 + BATCH
    assert first.hit("203.0.113.3", "200/m") and second.hit("203.0.113.3", "200/m")


def test_a_new_window_starts_from_zero(monkeypatch):
    clock = [1_000_020.0]
    monkeypatch.setattr(batched_rate_limit.time, "time", lambda: clock[0])
    limit = BatchedRateLimit("test:window")
    assert [limit.hit("203.0.113.4", "2/m") for _ in range(3)] == [False, False, True]
    clock[0] += 60
    assert limit.hit("203.0.113.4", "2/m") is False


def test_hostile_keys_cannot_grow_memory_without_bound(monkeypatch):
    monkeypatch.setattr(batched_rate_limit, "MAX_KEYS", 100)
    limit = BatchedRateLimit("test:memory")
    for i in range(1_000):
        limit.hit(f"key-{i}" + "x" * 1000, "5/m")
    assert len(limit._counts) <= 100


def test_a_cache_outage_counts_per_process_instead_of_failing(monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "add", down)
    limit = BatchedRateLimit("test:down")
    assert [limit.hit("203.0.113.5", "3/m") for _ in range(4)] == [False, False, False, True]


def test_threads_count_every_hit_exactly_once():
    limit = BatchedRateLimit("test:threads")
    threads = [threading.Thread(target=lambda: [limit.hit("203.0.113.6", "1000000/m") for _ in range(200)])
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (period, window), count = limit._window, limit._counts["203.0.113.6"]
    assert cache.get(limit._cache_key("203.0.113.6", period, window)) + count.unsent == 8 * 200
