import secrets

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from billing.money import format_amount
from core.models import BaseModel


def new_client_secret() -> str:
    return "cs_secret_" + secrets.token_urlsafe(24)


class Checkout(BaseModel):
    """A customer's purchase in progress: open -> confirmed -> succeeded | failed; open -> expired.
    A failed payment puts a confirmed checkout back to open for another try."""

    class Status(models.TextChoices):
        OPEN = "open"
        CONFIRMED = "confirmed"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        EXPIRED = "expired"

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="checkouts"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    client_secret = models.CharField(max_length=100, unique=True, default=new_client_secret)
    expires_at = models.DateTimeField(db_index=True)

    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    price = models.ForeignKey("catalog.Price", on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    seats = models.PositiveIntegerField(null=True, blank=True)
    custom_amount = models.BigIntegerField(null=True, blank=True, help_text="Pay-what-you-want amount.")
    discount = models.ForeignKey(
        "catalog.Discount", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    trial_days = models.PositiveSmallIntegerField(null=True, blank=True)

    customer = models.ForeignKey(
        "accounts.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="checkouts"
    )
    customer_email = models.EmailField(blank=True)
    customer_name = models.CharField(max_length=255, blank=True)
    billing_address = models.JSONField(null=True, blank=True)
    customer_tax_id = models.CharField(max_length=64, blank=True)
    is_business = models.BooleanField(default=False)

    subtotal = models.BigIntegerField(default=0)
    discount_amount = models.BigIntegerField(default=0)
    net = models.BigIntegerField(default=0)
    tax = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    tax_rate_bps = models.PositiveIntegerField(default=0)
    tax_inclusive = models.BooleanField(default=False)
    reverse_charge = models.BooleanField(default=False)

    success_url = models.URLField(max_length=2000, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    payment_error = models.CharField(max_length=500, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="checkout_org_created_idx"),
            models.Index(fields=["status", "expires_at"], name="checkout_status_expiry_idx"),
            # The backoffice finds a not yet confirmed checkout by the e-mail the buyer typed.
            models.Index(Lower("customer_email"), name="checkout_customer_email_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(total__gte=0) & Q(tax__gte=0), name="checkout_amounts_non_negative"
            )
        ]

    def __str__(self) -> str:
        # Titles and audit lines: what it is, not its id (shown in the page's record).
        return f"{format_amount(self.total, self.currency)} checkout ({self.status})"

    @property
    def reference(self) -> str:
        """What its payments are for (see billing.payments)."""
        return f"checkout:{self.pk}"
