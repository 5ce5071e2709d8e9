"""Base classes for /v1/ endpoints: tenant scoping, scopes and idempotency in one place."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, viewsets

from core.api.errors import api_exception_handler
from core.api.filters import PAGINATION_PARAMETERS, refuse_unknown_parameters
from core.api.idempotency import IdempotentReplay, idempotency_begin, idempotency_finish

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description="Send the same key to retry safely; the first response is replayed for 24 hours.",
)


class IdempotentMixin:
    """Stores the outcome of writes sent with an ``Idempotency-Key`` and replays it.

    Also refuses query parameters a read does not take: lists check theirs in the filter
    backend (filters, ``cursor``, ``limit``); other reads take none, except the paginated
    actions a view names in ``paginated_actions``.
    """

    paginated_actions: tuple[str, ...] = ()

    def initial(self, request, *args, **kwargs):
        self._idempotency_record = None
        super().initial(request, *args, **kwargs)
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            # 405 before the body is read: a method the route lacks is not a bad body.
            raise exceptions.MethodNotAllowed(request.method)
        action = getattr(self, "action", None)
        if method in ("get", "head") and action != "list":
            refuse_unknown_parameters(
                request, PAGINATION_PARAMETERS if action in self.paginated_actions else ()
            )
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
