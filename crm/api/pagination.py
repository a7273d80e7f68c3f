"""Cursor pagination: stable pages however fast new rows arrive."""

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.dateparse import parse_datetime
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination


class ApiCursorPagination(CursorPagination):
    """`?page_size=` from 1 to 1000 (default 100); `next`/`previous` are links.

    Each view sets `ordering` to a unique, never-changing column first (usually
    "-id"), which keeps a page's position valid while rows are added.
    """

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = "-id"
    page_size_query_description = "Rows per page, 1 to 1000 (default 100)."

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise exceptions.ValidationError(
                {
                    "page_size": [
                        exceptions.ErrorDetail(
                            f"page_size must be a whole number from 1 to "
                            f"{self.max_page_size}.",
                            code="invalid_page_size",
                        )
                    ]
                }
            )
        return size

    def get_ordering(self, request, queryset, view):
        ordering = getattr(view, "ordering", None) or self.ordering
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                self._position_check(cursor.position)
        except (exceptions.NotFound, DjangoValidationError, ValueError):
            raise exceptions.ValidationError(
                {
                    "cursor": [
                        exceptions.ErrorDetail(
                            "The cursor is not one this API handed out; follow the "
                            "next and previous links as they are.",
                            code="invalid_cursor",
                        )
                    ]
                }
            ) from None
        return cursor

    def _position_check(self, position: str) -> None:
        """A forged position must fail here, not as a database error."""
        name = self.ordering[0].lstrip("-")
        try:
            field = self._model._meta.get_field(name)
        except FieldDoesNotExist:
            # An annotation such as a membership's entered_at: a timestamp.
            if parse_datetime(position) is None:
                raise ValueError(position) from None
            return
        field.to_python(position)
