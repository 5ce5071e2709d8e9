"""Reads of the catalog shared by the API, the backoffice and the services."""

from django.apps import apps
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from billing.catalog.models import Discount, DiscountRedemption, Price, Product


def active_prices() -> QuerySet[Price]:
    return Price.objects.filter(is_archived=False).order_by("currency")


def products_with_prices(queryset: QuerySet[Product] | None = None) -> QuerySet[Product]:
    """Products with their active prices prefetched into ``product.active_prices``."""
    queryset = Product.objects.all() if queryset is None else queryset
    return queryset.prefetch_related(Prefetch("prices", queryset=active_prices(), to_attr="active_prices"))


def product_active_prices(product: Product) -> list[Price]:
    prefetched = getattr(product, "active_prices", None)
    return list(prefetched) if prefetched is not None else list(active_prices().filter(product=product))


def product_is_sold(product: Product) -> bool:
    """Whether any checkout, order line or subscription points at the product or one of its
    prices (then its prices are archived rather than edited, and it cannot be deleted)."""
    prices = Price.objects.filter(product=product).values("pk")
    Checkout = apps.get_model("checkout", "Checkout")
    OrderItem = apps.get_model("orders", "OrderItem")
    Order = apps.get_model("orders", "Order")
    Subscription = apps.get_model("subscriptions", "Subscription")
    return (
        Checkout.objects.filter(Q(product=product) | Q(price__in=prices)).exists()
        or Subscription.objects.filter(Q(product=product) | Q(price__in=prices)).exists()
        or OrderItem.objects.filter(price__in=prices).exists()
        or Order.objects.filter(product=product).exists()
    )


def discounts_with_usage(queryset: QuerySet[Discount] | None = None) -> QuerySet[Discount]:
    """Discounts annotated with ``redemptions_count`` (reserved and redeemed). A correlated
    subquery, so a page of a long list counts only its own rows."""
    queryset = Discount.objects.all() if queryset is None else queryset
    counts = (
        DiscountRedemption.objects.filter(discount=OuterRef("pk"))
        .order_by()
        .values("discount")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return queryset.annotate(
        redemptions_count=Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))
    )


def discount_redemptions_count(
    discount: Discount, *, customer_email: str | None = None, exclude_checkout=None
) -> int:
    """Redemptions that count against the limits: reserved (a checkout in flight) and redeemed."""
    redemptions = DiscountRedemption.objects.filter(discount=discount)
    if exclude_checkout is not None and exclude_checkout.pk is not None:
        redemptions = redemptions.exclude(checkout=exclude_checkout)
    if customer_email is not None:
        redemptions = redemptions.filter(customer_email__iexact=customer_email.strip())
    return redemptions.count()
