"""The Django admin for segments.

Segments are written only through segments.services: the change form hands its
checked rule to segment_create/segment_update, and memberships, history, size
snapshots and RFM thresholds, which only the engine writes, are read-only here.
"""

from . import records, segments
from .panels import customer_segments_html

__all__ = ["customer_segments_html", "records", "segments"]
