"""The member export log: every download of a segment's or persona's members."""

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from ..models import MemberExport


@transaction.atomic
def member_export_start(
    *, user: AbstractBaseUser, exported: models.Model, channels: Iterable[str]
) -> MemberExport:
    """Log an export of `exported`'s members before its first row is written."""
    return MemberExport.objects.create(
        exported_by=user,
        content_type=ContentType.objects.get_for_model(exported),
        object_id=exported.pk,
        label=str(exported)[:200],
        channels=[str(channel) for channel in channels],
    )


@transaction.atomic
def member_export_finish(
    *, export: MemberExport, rows: int, complete: bool
) -> MemberExport:
    """Record how many rows the export wrote, and whether it wrote them all."""
    export.rows = rows
    export.finished_at = timezone.now() if complete else None
    export.save(update_fields=["rows", "finished_at"])
    return export
