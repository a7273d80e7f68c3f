"""Rate limits per token, counted in the shared cache (Redis when configured).

DRF's own throttles keep a list of every request time per client in the cache and
rewrite it on each request; at the rates a busy till sends that list is large. A
fixed window counter costs one round trip to Redis per request instead.
"""

import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from crm.counters import counter_incr

PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}


def rate_parse(rate: str) -> tuple[int, int]:
    """ "600/min" -> (600, 60)."""
    count, _slash, period = rate.partition("/")
    return int(count), PERIODS[period.strip().lower()]


class ScopedWindowThrottle(BaseThrottle):
    """Allow `LOYALIST_API_THROTTLE_RATES[scope]` requests per window per client.

    The scope is the view's `throttle_scope` or "default". Clients are tokens'
    users; anonymous requests (which only reach the schema and docs) count per
    address.
    """

    default_scope = "default"

    def allow_request(self, request, view) -> bool:
        scope = getattr(view, "throttle_scope", None) or self.default_scope
        rate = settings.LOYALIST_API_THROTTLE_RATES.get(scope)
        if not rate:
            return True
        limit, period = rate_parse(rate)
        if request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"addr:{self.get_ident(request)}"
        now = time.time()
        window = int(now // period)
        key = f"api-throttle:{scope}:{ident}:{period}:{window}"
        count = counter_incr(key, timeout=period + 1)
        self._wait = (window + 1) * period - now
        return count <= limit

    def wait(self) -> float:
        return self._wait
