"""One error body for every API failure:

{"type": ..., "code": ..., "detail": ..., "errors": [{"field", "code", "detail"}]}
"""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db import DataError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

from core.api.parsers import too_large
from core.errors import ServiceError
from core.retry import ConcurrentUpdate, is_transient

logger = logging.getLogger("recur.api")

TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    406: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(
    status_code: int, code: str, detail: str, errors: list | None = None, type_: str | None = None
):
    return {
        "type": type_ or TYPE_BY_STATUS.get(status_code, "api_error"),
        "code": code,
        "detail": detail,
        "errors": errors or [],
    }


def flatten_errors(detail: Any, prefix: str = "") -> list[dict]:
    """DRF's nested validation detail as a flat list of field entries."""
    if isinstance(detail, dict):
        out: list[dict] = []
        for key, value in detail.items():
            if isinstance(key, int):  # list fields report errors by position
                path = f"{prefix}[{key}]"
            else:
                name = "" if key in ("non_field_errors", "__all__") else str(key)
                path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            out += flatten_errors(value, path)
        return out
    if isinstance(detail, list):
        if all(isinstance(item, exceptions.ErrorDetail | str) for item in detail):
            return [
                {"field": prefix or None, "code": getattr(item, "code", "invalid"), "detail": str(item)}
                for item in detail
            ]
        out = []
        for index, item in enumerate(detail):
            out += flatten_errors(item, f"{prefix}[{index}]" if prefix else f"[{index}]")
        return out
    return [{"field": prefix or None, "code": getattr(detail, "code", "invalid"), "detail": str(detail)}]


def api_exception_handler(exc: Exception, context: dict) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, ServiceError):
        errors = [{"field": exc.field, "code": exc.code, "detail": exc.detail}] if exc.field else []
        body = error_body(exc.status, exc.code, exc.detail, errors, exc.type)
        return Response(body, status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig | TooManyFieldsSent):
        exc = too_large()
    elif is_transient(exc):
        # A race a service did not retry (or kept losing): the caller may simply try again.
        logger.warning("concurrent update reached the API: %s", exc)
        exc = ConcurrentUpdate()
        return Response(error_body(exc.status, exc.code, exc.detail, type_=exc.type), status=exc.status)
    elif isinstance(exc, DataError):
        # A value the serializer let through but the column refuses: still the caller's fault.
        logger.warning("data error reached the database: %s", exc)
        return Response(error_body(400, "invalid_value", "A value is out of range or too long."), status=400)

    if isinstance(exc, exceptions.APIException):
        status_code = exc.status_code
        if isinstance(exc, exceptions.ValidationError):
            errors = flatten_errors(exc.detail)
            body = error_body(400, "validation_error", "The request has invalid fields.", errors)
        else:
            detail = exc.detail
            code = detail.code if isinstance(detail, exceptions.ErrorDetail) else exc.default_code
            body = error_body(status_code, code or exc.default_code, str(detail))
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
            status_code = status.HTTP_401_UNAUTHORIZED
        return Response(body, status=status_code, headers=headers)

    logger.exception("unhandled API error", exc_info=exc)
    return Response(error_body(500, "internal_error", "Something went wrong on our side."), status=500)


@csrf_exempt  # a POST to an unknown route is a 404, not a CSRF refusal: the API has no cookies
def json_not_found(request, exception=None) -> JsonResponse:
    return JsonResponse(error_body(404, "not_found", "No such route."), status=404)


def json_server_error(request) -> JsonResponse:
    return JsonResponse(error_body(500, "internal_error", "Something went wrong on our side."), status=500)
