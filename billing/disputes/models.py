from django.db import models

from billing.money import format_amount
from core.models import BaseModel


class Dispute(BaseModel):
    """A chargeback opened by the customer's bank, mirrored from ``charge.dispute.*`` events.

    Money moves when the processor withdraws the funds (the disputed amount plus the dispute
    fee, as Stripe's balance transactions say, leave the merchant's balance) and, for a won
    dispute, when the funds are reinstated (the amount comes back, and the fee as far as
    Stripe gave it back). Manual payments use the organization's dispute fee instead."""

    class Status(models.TextChoices):
        WARNING_NEEDS_RESPONSE = "warning_needs_response"
        WARNING_UNDER_REVIEW = "warning_under_review"
        WARNING_CLOSED = "warning_closed"
        NEEDS_RESPONSE = "needs_response"
        UNDER_REVIEW = "under_review"
        WON = "won"
        LOST = "lost"
        PREVENTED = "prevented"

    CLOSED = (Status.WON, Status.LOST, Status.WARNING_CLOSED, Status.PREVENTED)

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="disputes"
    )
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="disputes"
    )
    customer = models.ForeignKey(
        "accounts.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="disputes"
    )
    payment = models.ForeignKey(
        "payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="disputes"
    )
    processor_dispute_id = models.CharField(max_length=255, unique=True)
    processor_charge_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=30, choices=Status.choices)
    reason = models.CharField(max_length=50, blank=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    tax_amount = models.BigIntegerField(default=0, help_text="The order's tax withdrawn with the amount.")
    fee = models.BigIntegerField(default=0, help_text="The dispute fee charged to the merchant.")
    fee_currency = models.CharField(
        max_length=3, blank=True, help_text="The fee's currency (Stripe's settlement currency)."
    )
    fee_source = models.CharField(
        max_length=20,
        blank=True,
        choices=[("processor", "Processor balance transactions"), ("organization", "Organization setting")],
    )
    fee_refunded = models.BigIntegerField(
        default=0, help_text="The part of the fee given back when the dispute was won."
    )
    fee_refunded_at = models.DateTimeField(null=True, blank=True)
    evidence_due_by = models.DateTimeField(null=True, blank=True)
    funds_withdrawn_at = models.DateTimeField(null=True, blank=True)
    funds_reinstated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    access_revoked_at = models.DateTimeField(null=True, blank=True)
    # The subscription this dispute ended and the status it had, so a won dispute can restore it.
    revoked_subscription = models.ForeignKey(
        "subscriptions.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoked_subscription_status = models.CharField(max_length=20, blank=True)
    access_restored_at = models.DateTimeField(null=True, blank=True)
    access_note = models.CharField(max_length=255, blank=True)
    # Time of the newest processor snapshot applied; older snapshots never overwrite newer state.
    processor_state_at = models.DateTimeField(null=True, blank=True)
    snapshot = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="dispute_org_created_idx"),
            models.Index(fields=["organization", "status"], name="dispute_org_status_idx"),
        ]

    def __str__(self) -> str:
        # No status: a label is read long after it is written (the audit log shows the current one).
        return f"dispute {self.processor_dispute_id} of {format_amount(self.amount, self.currency)}"

    @property
    def is_open(self) -> bool:
        return self.status not in self.CLOSED
