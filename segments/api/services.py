"""The segment API's writes: thin calls into segments.services."""

from typing import Any

from django.db import transaction

from ..models import Segment
from ..services import segment_create, segment_update


@transaction.atomic
def api_segment_create(*, data: dict[str, Any]) -> Segment:
    return segment_create(**data)


@transaction.atomic
def api_segment_update(*, segment: Segment, data: dict[str, Any]) -> Segment:
    data = dict(data)
    data.pop("slug", None)
    return segment_update(segment=segment, **data)
