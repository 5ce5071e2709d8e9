"""Base classes for /v1/ endpoints: tenant scoping, scopes and idempotency in one place."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, viewsets

from core.api.errors import api_exception_handler
from core.api.idempotency import IdempotentReplay, idempotency_begin, idempotency_finish

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description="Send the same key to retry safely; the first response is replayed for 24 hours.",
)


class IdempotentMixin:
    """Stores the outcome of writes sent with an ``Idempotency-Key`` and replays it."""

    def initial(self, request, *args, **kwargs):
        self._idempotency_record = None
        super().initial(request, *args, **kwargs)
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            # 405 before the body is read: a method the route lacks is not a bad body.
            raise exceptions.MethodNotAllowed(request.method)
        self._idempotency_record = idempotency_begin(request)

    def handle_exception(self, exc):
        if isinstance(exc, IdempotentReplay):
            return exc.response()
        return super().handle_exception(exc)

    def get_exception_handler(self):
        return api_exception_handler

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record = getattr(self, "_idempotency_record", None)
        if record is not None:
            idempotency_finish(record, response)
            self._idempotency_record = None
        return response


class OrganizationScopedViewSet(IdempotentMixin, viewsets.GenericViewSet):
    """A viewset over one organization's rows: the token's organization, never another."""

    scope_resource: str = ""
    lookup_value_regex = "[^/]+"

    @property
    def organization(self):
        return self.request.auth.organization

    def get_queryset(self):
        return self.queryset.filter(organization=self.organization)
