"""What a purchase unlocks (``Benefit``), which products unlock it (``ProductBenefit``) and
each customer's grant of it (``BenefitGrant``).

A grant carries both what is wanted (``wanted``: granted or revoked, plus a cycle or an
update asked for) and what is done (``status``). Work is pending exactly while
``next_attempt_at`` is set, so a sweeper finds everything a lost message left behind, and a
killed worker delays a grant but never loses or doubles it (strategies are idempotent per
grant).
"""

from django.db import models
from django.db.models import Q

from core import clock
from core.models import BaseModel


class Benefit(BaseModel):
    """One benefit of an organization; ``type`` names its strategy and ``properties`` its
    settings (validated by that strategy: a license key's prefix and limits, a flag's
    metadata, a repository...). Deleting one revokes every grant of it, then hides it."""

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="benefits"
    )
    type = models.CharField(max_length=40)
    description = models.CharField(
        max_length=500, help_text="What the customer sees, e.g. 'Pro license key'."
    )
    properties = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "type"], name="benefit_org_type_idx")]

    def __str__(self) -> str:
        return self.description


class ProductBenefit(BaseModel):
    """A product unlocks a benefit. ``synced_at`` is null while the product's existing holders
    still have to be granted it (adding a benefit to a sold product) and ``removed_at`` set
    while their grants still have to be revoked; the row is deleted once that is done."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="product_benefits")
    benefit = models.ForeignKey(Benefit, on_delete=models.CASCADE, related_name="product_benefits")
    position = models.PositiveSmallIntegerField(default=0)
    synced_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    # The fan-out's cursor: holders up to this scope id are done (a resumed fan-out goes on from here).
    sync_cursor = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["position", "created_at"]
        constraints = [models.UniqueConstraint(fields=["product", "benefit"], name="productbenefit_once")]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="productbenefit_unsynced_idx",
                condition=Q(synced_at__isnull=True) | Q(removed_at__isnull=False),
            )
        ]


class BenefitGrant(BaseModel):
    """A customer's grant of a benefit, through a subscription or a one-time order (its scope).

    ``status``: ``pending -> granted -> revoked`` (and back to pending when access returns).
    ``wanted`` is what the events asked for; ``cycle_requested``/``update_requested`` ask the
    strategy to renew (a new period's credits, a license's expiry) or to apply the benefit's
    changed settings. ``properties`` holds what the strategy made (a license key's id, an
    invitation) for the customer's state and for revoking it later."""

    class Status(models.TextChoices):
        PENDING = "pending"
        GRANTED = "granted"
        REVOKED = "revoked"

    class Wanted(models.TextChoices):
        GRANTED = "granted"
        REVOKED = "revoked"

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    benefit = models.ForeignKey(Benefit, on_delete=models.PROTECT, related_name="grants")
    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="benefit_grants")
    subscription = models.ForeignKey(
        "subscriptions.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    wanted = models.CharField(max_length=10, choices=Wanted.choices, default=Wanted.GRANTED)
    cycle_requested = models.BooleanField(default=False)
    update_requested = models.BooleanField(default=False)
    properties = models.JSONField(default=dict, blank=True)
    granted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Why the grant is to be revoked (refund, dispute, subscription ended, operator, benefit removed).
    revoke_reason = models.CharField(max_length=200, blank=True)
    # An operator revoked it by hand: billing events do not grant it again until one grants it.
    revoked_by_operator = models.BooleanField(default=False)
    # Pending work: set while something is wanted that is not done; null when done or given up.
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=clock.now)
    attempts = models.PositiveIntegerField(default=0)
    # A strategy that calls out (GitHub) holds the grant this long without a row lock.
    claimed_until = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    errored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "benefit"],
                name="benefitgrant_once_per_subscription",
                condition=Q(subscription__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["order", "benefit"],
                name="benefitgrant_once_per_order",
                condition=Q(subscription__isnull=True),
            ),
            models.CheckConstraint(
                condition=Q(subscription__isnull=False) | Q(order__isnull=False),
                name="benefitgrant_has_scope",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="benefitgrant_due_idx",
                condition=Q(next_attempt_at__isnull=False),
            ),
            models.Index(fields=["customer", "status"], name="benefitgrant_customer_idx"),
            models.Index(fields=["benefit", "status"], name="benefitgrant_benefit_idx"),
            models.Index(
                fields=["organization", "errored_at"],
                name="benefitgrant_errors_idx",
                condition=Q(errored_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.benefit} for {self.customer_id}"

    @property
    def is_pending_work(self) -> bool:
        return self.next_attempt_at is not None
