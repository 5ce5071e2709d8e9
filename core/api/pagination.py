from base64 import b64decode
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

MAX_LIMIT = 100
NEXT_HELP = "The next page (older rows), or null on the last page."
PREVIOUS_HELP = "The previous page (newer rows), or null on the first page."
NEXT_CURSOR_HELP = "Pass as `cursor` to get the next page; null on the last page."
PREVIOUS_CURSOR_HELP = "Pass as `cursor` to get the previous page; null on the first page."
CURSOR_HELP = (
    "A page's `next_cursor` or `previous_cursor` (the cursor of its `next` or `previous` link); "
    "any other value is a 400 `invalid_cursor`."
)


class InvalidCursor(exceptions.ValidationError):
    """A 400 with the field named, like any other bad parameter (DRF's own answer is a 404)."""


def cursor_of(link: str | None) -> str | None:
    """The ``cursor`` parameter of a page link, which a client passes back as ``?cursor=``."""
    if link is None:
        return None
    return parse_qs(urlsplit(link).query).get("cursor", [None])[0]


class CreatedCursorPagination(CursorPagination):
    """Newest first; the cursor is stable under inserts. Bad ``cursor`` or ``limit`` is a 400.

    Pages carry the cursors as their own fields beside the links (``next_cursor``,
    ``previous_cursor``): a client generated from the OpenAPI document pages with them
    without parsing URLs.
    """

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

    def get_paginated_response(self, data):
        next_link, previous_link = self.get_next_link(), self.get_previous_link()
        return Response(
            {
                "next": next_link,
                "previous": previous_link,
                "next_cursor": cursor_of(next_link),
                "previous_cursor": cursor_of(previous_link),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["next", "previous", "next_cursor", "previous_cursor", "results"],
            "properties": {
                # OpenAPI 3.1 (the document's version): null is one of the types.
                "next": {"type": ["string", "null"], "format": "uri", "description": NEXT_HELP},
                "previous": {"type": ["string", "null"], "format": "uri", "description": PREVIOUS_HELP},
                "next_cursor": {"type": ["string", "null"], "description": NEXT_CURSOR_HELP},
                "previous_cursor": {"type": ["string", "null"], "description": PREVIOUS_CURSOR_HELP},
                "results": schema,
            },
        }

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
                parameter["description"] = CURSOR_HELP
        return parameters


# For paginated actions (the schema of lists comes from get_schema_operation_parameters).
PAGE_PARAMETERS = [
    OpenApiParameter("cursor", OpenApiTypes.STR, OpenApiParameter.QUERY, description=CURSOR_HELP),
    OpenApiParameter(
        "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, OpenApiParameter.QUERY,
        description=f"Page size, 1 to {MAX_LIMIT} (default 20).",
    ),
]  # fmt: skip
