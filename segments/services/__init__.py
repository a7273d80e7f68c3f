"""Every write to segments goes through these services."""

from .engine import (
    customers_mark_dirty,
    dirty_drain,
    due_refresh,
    memberships_refresh,
    recompute_all,
    recompute_finalize,
    recompute_range,
)
from .rfm import rfm_thresholds_compute
from .segments import (
    recompute_later,
    segment_create,
    segment_deactivate,
    segment_delete,
    segment_update,
)

__all__ = [
    "customers_mark_dirty",
    "dirty_drain",
    "due_refresh",
    "memberships_refresh",
    "recompute_all",
    "recompute_finalize",
    "recompute_later",
    "recompute_range",
    "rfm_thresholds_compute",
    "segment_create",
    "segment_deactivate",
    "segment_delete",
    "segment_update",
]
