"""The /v1/ router: every API resource registers here."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from accounts.api import CustomerViewSet, OrganizationView
from benefits.api import BenefitGrantViewSet, BenefitTypeListView, BenefitViewSet, ProductBenefitsView
from benefits.downloadables.api import FileViewSet
from benefits.license_keys.api import LicenseKeyPublicViewSet, LicenseKeyViewSet
from benefits.state_api import CustomerExternalStateView, CustomerStateView
from billing.catalog.api import DiscountViewSet, ProductViewSet
from billing.checkout.api import CheckoutClientViewSet, CheckoutViewSet
from billing.disputes.api import DisputeViewSet
from billing.ledger.api import BalanceView, LedgerTransactionViewSet
from billing.orders.api import OrderViewSet
from billing.refunds.api import RefundViewSet
from billing.subscriptions.api import SubscriptionViewSet
from billing.webhooks.api import WebhookDeliveryViewSet, WebhookEndpointViewSet
from core.api.errors import json_not_found
from core.events.api import EventViewSet

router = SimpleRouter()
router.trailing_slash = "/?"  # accept /v1/customers and /v1/customers/
router.register("customers", CustomerViewSet, basename="customer")
router.register("products", ProductViewSet, basename="product")
router.register("discounts", DiscountViewSet, basename="discount")
router.register("checkouts/client", CheckoutClientViewSet, basename="checkout-client")
router.register("checkouts", CheckoutViewSet, basename="checkout")
router.register("orders", OrderViewSet, basename="order")
router.register("subscriptions", SubscriptionViewSet, basename="subscription")
router.register("refunds", RefundViewSet, basename="refund")
router.register("disputes", DisputeViewSet, basename="dispute")
router.register("ledger/transactions", LedgerTransactionViewSet, basename="ledger-transaction")
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("events", EventViewSet, basename="event")
router.register("license-keys", LicenseKeyViewSet, basename="license-key")
router.register(
    "customer-portal/license-keys", LicenseKeyPublicViewSet, basename="customer-portal-license-key"
)
router.register("benefits", BenefitViewSet, basename="benefit")
router.register("benefit-grants", BenefitGrantViewSet, basename="benefit-grant")
router.register("files", FileViewSet, basename="file")

urlpatterns = [
    path("organization", OrganizationView.as_view(), name="organization"),
    path("balance", BalanceView.as_view(), name="balance"),
    re_path(r"^benefit-types/?$", BenefitTypeListView.as_view(), name="benefit-types"),
    re_path(r"^products/(?P<pk>[^/]+)/benefits/?$", ProductBenefitsView.as_view(), name="product-benefits"),
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
    # The customer's state lives in benefits (the highest app), beside the customers routes.
    re_path(
        r"^customers/external/(?P<external_id>[^/]+)/state/?$",
        CustomerExternalStateView.as_view(),
        name="customer-external-state",
    ),
    re_path(r"^customers/(?P<pk>[^/]+)/state/?$", CustomerStateView.as_view(), name="customer-state"),
    *router.urls,
    re_path(r"^.*$", json_not_found),  # unknown /v1/ routes answer in the API's error format
]
