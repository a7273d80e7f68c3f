"""Member export: any group of customers (a segment's, a persona's) as a CSV file.

The apps built on the core supply the members as a customer queryset; this module
reads them in one query, fills the contact columns of a channel only where the
customer's current consent on it is a grant (`CustomerQuerySet.with_reach`, the
definition the dashboard's reach uses), streams the rows and logs the export.
Withheld contact details are blanked in SQL, so they never leave the database.
"""

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, CharField, F, Model, QuerySet, Value, When
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.utils.translation import gettext as _

from .models import Channel, Customer, MemberExport
from .services import member_export_finish, member_export_start

# Who may export members: adding an export to the log is exporting. The admin
# offers no add form (MemberExportAdmin); only the export views write the log.
MEMBER_EXPORT_PERMISSION = "crm.add_memberexport"

# Rows fetched per round trip of the server-side cursor.
CHUNK_SIZE = 2000


@dataclass(frozen=True)
class ContactColumn:
    field: str
    channel: str

    @property
    def header(self) -> str:
        return {
            "email": _("Email"),
            "phone": _("Phone (SMS)"),
            "address": _("Address"),
            "postal_code": _("Postal code"),
        }[self.field]


# The contact details each channel's messages need. Push and social media
# audiences need no detail of their own: an export carries none for them.
CONTACT_COLUMNS: tuple[ContactColumn, ...] = (
    ContactColumn("email", Channel.EMAIL),
    ContactColumn("phone", Channel.SMS),
    ContactColumn("address", Channel.POST),
    ContactColumn("postal_code", Channel.POST),
)
EXPORT_CHANNELS: tuple[str, ...] = tuple(
    dict.fromkeys(column.channel for column in CONTACT_COLUMNS)
)

# Non-contact columns, read for every member.
BASE_FIELDS = (
    "pk",
    "first_name",
    "last_name",
    "city",
    "stats__orders",
    "stats__total_spent",
    "stats__last_purchase_at",
)


def member_export_headers(channels: Iterable[str] = EXPORT_CHANNELS) -> list[str]:
    wanted = set(channels)
    return [
        _("Customer id"),
        _("First name"),
        _("Last name"),
        _("City"),
        _("Orders"),
        _("Total spent (%(currency)s)") % {"currency": settings.LOYALIST_CURRENCY},
        _("Last purchase"),
        *(column.header for column in CONTACT_COLUMNS if column.channel in wanted),
    ]


def member_export_rows(
    *, members: QuerySet[Customer], channels: Iterable[str] = EXPORT_CHANNELS
) -> QuerySet:
    """The members' export rows as tuples, in customer id order: one query.

    A contact column holds the detail only when the customer is reachable on its
    channel now (current consent a grant, address held); otherwise "".
    """
    wanted = [column for column in CONTACT_COLUMNS if column.channel in channels]
    contact = {
        f"export_{column.field}": Case(
            When(**{f"{column.channel}_reachable": True}, then=F(column.field)),
            default=Value(""),
            output_field=CharField(),
        )
        for column in wanted
    }
    return (
        members.with_reach(list(dict.fromkeys(column.channel for column in wanted)))
        .annotate(**contact)
        .order_by("pk")
        .values_list(*BASE_FIELDS, *contact)
    )


# A cell starting with one of these is a formula to a spreadsheet: a name typed as
# "=HYPERLINK(...)" must not run when a marketer opens the file.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def _cells(row: tuple[Any, ...]) -> list[Any]:
    pk, first, last, city, orders, spent, last_purchase, *contact = row
    return [
        pk,
        _text(first),
        _text(last),
        _text(city),
        orders or 0,
        spent if spent is not None else Decimal("0.00"),
        _local_date(last_purchase),
        # Phone numbers are stored as +<digits> (E.164), a number, not a formula.
        *(
            value if value.startswith("+") and value[1:].isdigit() else _text(value)
            for value in contact
        ),
    ]


def _local_date(moment: datetime | None) -> str:
    return timezone.localdate(moment).isoformat() if moment else ""


class _Echo:
    """A file whose write returns the line, so csv.writer yields it to the stream."""

    def write(self, value: str) -> str:
        return value


def member_export_lines(
    *, export: MemberExport, rows: QuerySet, channels: Iterable[str]
) -> Iterator[str]:
    """The CSV lines, header first; logs the rows written when the stream ends.

    The count is of the rows actually written, taken when the stream ends rather
    than counted beforehand: a count before the stream would be another query in
    another snapshot (members may join or leave in between), and a download
    stopped half-way must log the rows that did leave.
    """
    writer = csv.writer(_Echo())
    written = 0
    complete = False
    try:
        yield writer.writerow(member_export_headers(channels))
        for row in rows.iterator(chunk_size=CHUNK_SIZE):
            line = writer.writerow(_cells(row))
            # Counted once handed to the server: a client that stops reading
            # now has received it (or may yet).
            written += 1
            yield line
        complete = True
    finally:
        member_export_finish(export=export, rows=written, complete=complete)


def member_export_response(
    *,
    user: AbstractBaseUser,
    exported: Model,
    members: QuerySet[Customer],
    channels: Iterable[str] = EXPORT_CHANNELS,
) -> StreamingHttpResponse:
    """A streamed CSV download of `exported`'s members, logged as the user's.

    The caller checks MEMBER_EXPORT_PERMISSION.
    """
    channels = [channel for channel in EXPORT_CHANNELS if channel in set(channels)]
    export = member_export_start(user=user, exported=exported, channels=channels)
    rows = member_export_rows(members=members, channels=channels)
    response = StreamingHttpResponse(
        member_export_lines(export=export, rows=rows, channels=channels),
        content_type="text/csv; charset=utf-8",
    )
    stamp = timezone.localdate(export.exported_at).isoformat()
    name = slugify(str(exported)) or "members"
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=f"{name}-members-{stamp}.csv"
    )
    return response
