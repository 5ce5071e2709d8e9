"""The hosted checkout page (server-rendered; the customer's browser talks to it)."""

from django.http import HttpResponse


def checkout_page(request, client_secret: str):  # replaced by the hosted page
    return HttpResponse("checkout")
