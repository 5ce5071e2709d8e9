"""The /v1/ router: every API resource registers here."""

from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from accounts.api import CustomerViewSet, OrganizationView

router = SimpleRouter(trailing_slash="/?")
router.register("customers", CustomerViewSet, basename="customer")

urlpatterns = [
    path("organization", OrganizationView.as_view(), name="organization"),
    path("openapi.json", SpectacularJSONAPIView.as_view(authentication_classes=[], permission_classes=[], throttle_classes=[]), name="openapi"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="openapi", authentication_classes=[], permission_classes=[], throttle_classes=[]),
        name="api-docs",
    ),
    *router.urls,
]
