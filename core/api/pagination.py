from base64 import b64decode
from datetime import datetime

from rest_framework import exceptions
from rest_framework.pagination import CursorPagination

MAX_LIMIT = 100


class InvalidCursor(exceptions.ValidationError):
    """A 400 with the field named, like any other bad parameter (DRF's own answer is a 404)."""


class CreatedCursorPagination(CursorPagination):
    """Newest first; the cursor is stable under inserts. Bad ``cursor`` or ``limit`` is a 400."""

    ordering = ("-created_at", "-id")
    page_size = 20
    page_size_query_param = "limit"
    max_page_size = MAX_LIMIT

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"Use a whole number from 1 to {MAX_LIMIT}."]}, code="invalid"
            )
        return int(raw)

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        try:
            if encoded:  # strict base64: DRF's decoder skips stray characters and starts over
                b64decode(encoded.encode("ascii"), validate=True)
            cursor = super().decode_cursor(request)
        except (exceptions.NotFound, ValueError, UnicodeEncodeError):
            cursor = False
        if cursor and cursor.position is not None and not self.position_is_valid(cursor.position):
            cursor = False  # anything but a position of ours would reach the database
        if cursor is False:
            raise InvalidCursor(
                {self.cursor_query_param: ["This cursor is not one we gave out; use `next` or `previous`."]},
                code="invalid_cursor",
            )
        return cursor

    def position_is_valid(self, position: str) -> bool:
        """The position is a ``created_at``."""
        try:
            datetime.fromisoformat(position)
        except ValueError:
            return False
        return True

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
            if parameter["name"] == self.cursor_query_param:
                parameter["description"] = (
                    "The `next` or `previous` cursor of a page; any other value is a 400 `invalid_cursor`."
                )
        return parameters
