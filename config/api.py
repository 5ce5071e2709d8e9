"""The /v1/ router: every API resource registers here."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from accounts.api import CustomerViewSet, OrganizationView
from core.api.errors import json_not_found

router = SimpleRouter()
router.trailing_slash = "/?"  # accept /v1/customers and /v1/customers/
router.register("customers", CustomerViewSet, basename="customer")

urlpatterns = [
    path("organization", OrganizationView.as_view(), name="organization"),
    path(
        "openapi.json",
        SpectacularJSONAPIView.as_view(authentication_classes=[], permission_classes=[], throttle_classes=[]),
        name="openapi",
    ),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(
            url_name="openapi", authentication_classes=[], permission_classes=[], throttle_classes=[]
        ),
        name="api-docs",
    ),
    *router.urls,
    re_path(r"^.*$", json_not_found),  # unknown /v1/ routes answer in the API's error format
]
