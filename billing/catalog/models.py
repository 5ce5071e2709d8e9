from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from core.models import BaseModel


class RecurringInterval(models.TextChoices):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class Product(BaseModel):
    """Something a merchant sells: one-time, or recurring every N days, weeks, months or years."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="products"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    recurring_interval = models.CharField(
        max_length=10, choices=RecurringInterval.choices, null=True, blank=True
    )
    recurring_interval_count = models.PositiveSmallIntegerField(default=1)
    is_archived = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="product_org_created_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(recurring_interval_count__gte=1) & Q(recurring_interval_count__lte=365),
                name="product_interval_count_range",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_recurring(self) -> bool:
        return self.recurring_interval is not None


class Price(BaseModel):
    """What a product costs in one currency. At most one active price per product and currency."""

    class Type(models.TextChoices):
        FIXED = "fixed"
        CUSTOM = "custom"  # pay what you want, within bounds
        FREE = "free"
        SEAT_BASED = "seat_based"

    class TierMode(models.TextChoices):
        VOLUME = "volume"  # every seat at the unit amount of the tier the total falls in
        GRADUATED = "graduated"  # each tier's seats at that tier's unit amount

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="prices")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="prices")
    currency = models.CharField(max_length=3)
    type = models.CharField(max_length=20, choices=Type.choices)
    amount = models.BigIntegerField(null=True, blank=True, help_text="Fixed price, in minor units.")
    minimum_amount = models.BigIntegerField(null=True, blank=True)
    maximum_amount = models.BigIntegerField(null=True, blank=True)
    preset_amount = models.BigIntegerField(null=True, blank=True)
    # [{"up_to": 10 | null, "unit_amount": 800, "flat_amount": 0}, ...], ascending, last up_to null.
    seat_tiers = models.JSONField(default=list, blank=True)
    seat_tier_mode = models.CharField(max_length=10, choices=TierMode.choices, blank=True)
    minimum_seats = models.PositiveIntegerField(default=1)
    maximum_seats = models.PositiveIntegerField(null=True, blank=True)
    is_archived = models.BooleanField(default=False)

    class Meta:
        ordering = ["currency", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "currency"],
                condition=Q(is_archived=False),
                name="price_one_active_per_currency",
            ),
            models.CheckConstraint(
                condition=~Q(type="fixed") | Q(amount__gt=0), name="price_fixed_has_amount"
            ),
            models.CheckConstraint(
                condition=~Q(type="custom") | Q(minimum_amount__gte=0), name="price_custom_has_minimum"
            ),
            models.CheckConstraint(
                condition=Q(maximum_seats__isnull=True) | Q(maximum_seats__gte=models.F("minimum_seats")),
                name="price_seat_bounds",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product} · {self.currency} {self.type}"


class Discount(BaseModel):
    class Type(models.TextChoices):
        PERCENTAGE = "percentage"
        FIXED = "fixed"

    class Duration(models.TextChoices):
        ONCE = "once"
        REPEATING = "repeating"
        FOREVER = "forever"

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="discounts"
    )
    name = models.CharField(max_length=200)
    code = models.CharField(max_length=64, null=True, blank=True)
    type = models.CharField(max_length=20, choices=Type.choices)
    basis_points = models.PositiveIntegerField(null=True, blank=True, help_text="10000 = 100%.")
    # {"usd": 500, "eur": 450}: the amount off per currency, for fixed discounts.
    amounts = models.JSONField(default=dict, blank=True)
    duration = models.CharField(max_length=20, choices=Duration.choices, default=Duration.ONCE)
    duration_in_months = models.PositiveSmallIntegerField(null=True, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    max_redemptions = models.PositiveIntegerField(null=True, blank=True)
    max_redemptions_per_customer = models.PositiveIntegerField(null=True, blank=True)
    products = models.ManyToManyField(Product, blank=True, related_name="discounts")
    is_archived = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                Lower("code"),
                "organization",
                condition=Q(code__isnull=False),
                name="discount_code_unique_per_org",
            ),
            models.CheckConstraint(
                condition=~Q(type="percentage") | (Q(basis_points__gte=1) & Q(basis_points__lte=10_000)),
                name="discount_percentage_range",
            ),
            models.CheckConstraint(
                condition=~Q(duration="repeating") | Q(duration_in_months__gte=1),
                name="discount_repeating_months",
            ),
        ]

    def __str__(self) -> str:
        return self.code or self.name


class DiscountRedemption(BaseModel):
    """A discount used by a customer. Reserved when a checkout is confirmed (so two racing
    checkouts cannot both take the last one), redeemed when it succeeds, released if it fails."""

    class Status(models.TextChoices):
        RESERVED = "reserved"
        REDEEMED = "redeemed"

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    discount = models.ForeignKey(Discount, on_delete=models.PROTECT, related_name="redemptions")
    customer = models.ForeignKey("accounts.Customer", null=True, on_delete=models.PROTECT, related_name="+")
    customer_email = models.EmailField()
    checkout = models.OneToOneField(
        "checkout.Checkout", null=True, blank=True, on_delete=models.PROTECT, related_name="redemption"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RESERVED)

    def __str__(self) -> str:
        return f"{self.discount} by {self.customer_email}"
