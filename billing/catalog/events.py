"""The catalog's domain events (``product.*``, ``discount.*``), registered when the app is ready."""

from core.events.registry import register_object


def register() -> None:
    from billing.catalog import selectors
    from billing.catalog.api import DiscountSerializer, ProductSerializer
    from billing.catalog.models import Discount, Product

    register_object(
        "product",
        model=Product,
        serializer=ProductSerializer,
        events={
            "created": "A product was created with its prices.",
            "updated": "A product's fields or active prices changed, or it was archived or unarchived.",
        },
        prepare=selectors.products_with_prices,
    )
    register_object(
        "discount",
        model=Discount,
        serializer=DiscountSerializer,
        events={
            "created": "A discount was created.",
            "updated": "A discount's name, code, window, limits, products or metadata changed, or it "
            "was archived or unarchived.",
        },
        prepare=selectors.discounts_with_usage,
    )
