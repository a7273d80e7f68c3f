"""Counters and flags every process shares, at one Redis round trip each.

Through Django's cache API a counter with an expiry costs three round trips (add,
then incr, which first checks that the key exists), and every call builds a new
Redis client. The API's rate limit and the segment engine's "drain pending" flag
run on every sale, so they talk to Redis directly. With REDIS_URL unset (the
embedded mode) the local-memory cache stands in, within the one process.
"""

import functools

import redis
from django.conf import settings
from django.core.cache import cache


@functools.cache
def _client() -> redis.Redis | None:
    # Made on first use in each process, so never shared across a fork.
    return redis.Redis.from_url(settings.REDIS_URL) if settings.REDIS_URL else None


def _key(name: str) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "loyalist"
    return f"{prefix}:{name}"


def counter_incr(name: str, *, timeout: int) -> int:
    """Add one to the counter `name` and return it; a new counter lives `timeout`
    seconds from its first increment."""
    client = _client()
    if client is None:
        if cache.add(name, 1, timeout):
            return 1
        try:
            return cache.incr(name)
        except ValueError:  # expired between add and incr: a new window
            cache.add(name, 1, timeout)
            return 1
    key = _key(name)
    # SET NX creates the counter with its expiry only if it is missing; INCR keeps
    # the expiry. Both in one round trip, atomic per command.
    pipe = client.pipeline(transaction=False)
    pipe.set(key, 0, ex=timeout, nx=True)
    pipe.incr(key)
    _created, count = pipe.execute()
    return count


def flag_raise(name: str, *, timeout: int) -> bool:
    """Raise the flag `name` for `timeout` seconds; False if it was already up."""
    client = _client()
    if client is None:
        return cache.add(name, 1, timeout)
    return bool(client.set(_key(name), 1, ex=timeout, nx=True))


def flag_lower(name: str) -> None:
    client = _client()
    if client is None:
        cache.delete(name)
    else:
        client.delete(_key(name))
