from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from billing.payments.webhooks import StripeWebhookView
from config import api
from core.api.errors import json_not_found, json_server_error

urlpatterns = [
    path("", RedirectView.as_view(url="/backoffice/", permanent=False)),
    path("backoffice/", admin.site.urls),
    path("v1/", include(api.urlpatterns)),
    path("stripe/webhook/<uuid:uuid>/", StripeWebhookView.as_view(), name="stripe-webhook"),
    path("checkout/", include("billing.checkout.urls")),
    path("downloads/", include("benefits.downloadables.urls")),
]


def handler404(request, exception=None):
    if request.path.startswith("/v1/"):
        return json_not_found(request, exception)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/v1/"):
        return json_server_error(request)
    from django.views.defaults import server_error

    return server_error(request)
