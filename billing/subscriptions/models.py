from django.db import models

from core.models import BaseModel


class Subscription(BaseModel):
    """A customer's recurring purchase. Periods are [start, end) and computed from the anchor."""

    class Status(models.TextChoices):
        INCOMPLETE = "incomplete"
        TRIALING = "trialing"
        ACTIVE = "active"
        PAST_DUE = "past_due"
        CANCELED = "canceled"
        UNPAID = "unpaid"
        PAUSED = "paused"

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="subscriptions"
    )
    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="subscriptions")
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="subscriptions")
    price = models.ForeignKey("catalog.Price", on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=20, choices=Status.choices)
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField(help_text="Recurring amount per period before discount and tax.")
    seats = models.PositiveIntegerField(null=True, blank=True)
    billing_anchor = models.DateTimeField()
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField(db_index=True)
    trial_start = models.DateTimeField(null=True, blank=True)
    trial_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    past_due_at = models.DateTimeField(null=True, blank=True)
    discount = models.ForeignKey(
        "catalog.Discount", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    discount_periods_remaining = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Billing periods the discount still applies to; empty means forever."
    )
    checkout = models.OneToOneField(
        "checkout.Checkout", null=True, blank=True, on_delete=models.PROTECT, related_name="subscription"
    )
    metadata = models.JSONField(default=dict, blank=True)
    cancellation_reason = models.CharField(max_length=40, blank=True)
    cancellation_comment = models.TextField(blank=True)
    pause_at_period_end = models.BooleanField(default=False)
    paused_at = models.DateTimeField(null=True, blank=True)
    # {"price_id": ..., "seats": ...}: a change to apply when the current period ends.
    scheduled_change = models.JSONField(null=True, blank=True)
    # Set while a renewal worker owns the subscription; stale claims are released by the sweeper.
    renewal_claimed_at = models.DateTimeField(null=True, blank=True)
    # When an ended subscription's benefits are to be revoked (the organization's grace period).
    benefits_revoke_at = models.DateTimeField(null=True, blank=True)
    # The trial end that subscription.trial_will_end was recorded for (once per trial end).
    trial_will_end_notified_for = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["current_period_end"],
                condition=models.Q(status__in=["trialing", "active", "past_due"]),
                name="subscription_due_idx",
            ),
            models.Index(fields=["organization", "-created_at"], name="subscription_org_created_idx"),
            models.Index(fields=["organization", "status"], name="subscription_org_status_idx"),
            models.Index(fields=["customer", "-created_at"], name="subscription_customer_idx"),
            # Claims held (the invariant "no claim is stale"): a handful at any time.
            models.Index(
                fields=["renewal_claimed_at"],
                condition=models.Q(renewal_claimed_at__isnull=False),
                name="subscription_claimed_idx",
            ),
            # The trial-will-end job's scan: trialing subscriptions by trial end.
            models.Index(  # the revocation job: subscriptions whose access is to end
                fields=["benefits_revoke_at"],
                condition=models.Q(benefits_revoke_at__isnull=False),
                name="subscription_revoke_due_idx",
            ),
            models.Index(
                fields=["trial_end"],
                condition=models.Q(status="trialing"),
                name="subscription_trialing_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product} for {self.customer}"


class BillingEntry(BaseModel):
    """A pending line for a subscription's next order: the period's charge, prorations,
    seat changes. ``order`` is set when an order consumes it."""

    class Kind(models.TextChoices):
        CYCLE = "cycle"
        PRORATION_CREDIT = "proration_credit"
        PRORATION_DEBIT = "proration_debit"
        SEATS_INCREASE = "seats_increase"
        SEATS_DECREASE = "seats_decrease"
        METERED = "metered"

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="+")
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="billing_entries")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    label = models.CharField(max_length=300)
    amount = models.BigIntegerField(help_text="Signed, in minor units: credits are negative.")
    currency = models.CharField(max_length=3)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="billing_entries"
    )

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(
                fields=["subscription"],
                condition=models.Q(order__isnull=True),
                name="billingentry_pending_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.amount}"
