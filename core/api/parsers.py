"""The API's JSON parser: malformed, too deeply nested or NUL-carrying bodies are a 400,
bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` a 413."""

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

from core.json_input import JsonInputError, json_loads_bounded


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "request_too_large"
    default_detail = "The request body is larger than the API accepts."


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.", code="request_too_large"
    )


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        # Read one byte past the limit: whatever the Content-Length claimed, no more is held.
        raw = (stream.read() if limit is None else stream.read(limit + 1)) if stream is not None else b""
        if limit is not None and len(raw) > limit:
            raise too_large()
        try:
            return json_loads_bounded(raw.decode(encoding))
        except UnicodeDecodeError:
            raise exceptions.ParseError(f"The body is not {encoding} text.", code="parse_error") from None
        except JsonInputError as exc:
            raise exceptions.ParseError(exc.detail, code=exc.code) from None
