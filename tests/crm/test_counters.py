"""Shared counters and flags, on Redis and (embedded mode) in local memory."""

import uuid

import pytest
from django.core.cache import cache

from crm import counters


@pytest.fixture(params=["redis", "local"])
def backend(request, settings):
    if request.param == "local":
        settings.REDIS_URL = ""
    elif not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    counters._client.cache_clear()
    yield request.param
    counters._client.cache_clear()


def name() -> str:
    return f"test-{uuid.uuid4().hex}"


def test_a_counter_counts_up_from_one_and_expires(backend):
    key = name()

    assert [counters.counter_incr(key, timeout=30) for _ in range(3)] == [1, 2, 3]
    if backend == "redis":
        ttl = counters._client().ttl(counters._key(key))
        assert 0 < ttl <= 30  # set by the first increment, kept by the others
    else:
        assert cache.get(key) == 3


def test_a_flag_is_raised_once_until_lowered(backend):
    key = name()

    assert counters.flag_raise(key, timeout=30) is True
    assert counters.flag_raise(key, timeout=30) is False
    counters.flag_lower(key)
    assert counters.flag_raise(key, timeout=30) is True


def test_redis_keys_carry_the_cache_prefix(settings):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    counters._client.cache_clear()
    key = name()
    counters.counter_incr(key, timeout=30)

    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    assert counters._client().get(f"{prefix}:{key}") == b"1"
