"""The hosted checkout page's routes; included under ``checkout/`` by config/urls.py.

Route names are global (no namespace): the API's checkout ``url`` reverses "checkout-page".
"""

from django.urls import path

from billing.checkout import views

urlpatterns = [
    path("<str:client_secret>/", views.checkout_page, name="checkout-page"),
    path("<str:client_secret>/update/", views.checkout_update, name="checkout-update"),
    path("<str:client_secret>/confirm/", views.checkout_confirm, name="checkout-confirm"),
    path("<str:client_secret>/status/", views.checkout_status, name="checkout-status"),
    path("<str:client_secret>/success/", views.checkout_success, name="checkout-success"),
    path(
        "<str:client_secret>/dev/payment-method/",
        views.dev_payment_method,
        name="checkout-dev-payment-method",
    ),
]
