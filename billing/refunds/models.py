from django.conf import settings
from django.db import models
from django.db.models import Q

from billing.money import format_amount
from core.models import BaseModel


class Refund(BaseModel):
    """Money given back for a paid order: ``pending -> succeeded | failed | canceled``.

    The ledger posting is made when the refund is created (the merchant's balance drops at
    once, so the money cannot be paid out meanwhile) and reversed if the processor reports
    it failed or canceled. ``amount`` is what leaves the order: ``card_amount`` back to the
    payment method, ``wallet_amount`` back to the customer's wallet (the part the order
    took from it); ``tax_amount`` is the tax reversed with it."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELED = "canceled"

    class Reason(models.TextChoices):
        REQUESTED_BY_CUSTOMER = "requested_by_customer"
        DUPLICATE = "duplicate"
        FRAUDULENT = "fraudulent"
        SERVICE_DISRUPTION = "service_disruption"
        SATISFACTION_GUARANTEE = "satisfaction_guarantee"
        OTHER = "other"

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="refunds"
    )
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="refunds")
    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey(
        "payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=30, choices=Reason.choices, default=Reason.REQUESTED_BY_CUSTOMER)
    comment = models.TextField(blank=True)
    revoke_benefits = models.BooleanField(default=False)
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    card_amount = models.BigIntegerField(default=0)
    wallet_amount = models.BigIntegerField(default=0)
    tax_amount = models.BigIntegerField(default=0)
    processor_refund_id = models.CharField(max_length=255, blank=True)
    failure_reason = models.CharField(max_length=255, blank=True)
    # Created in Recur (API, backoffice), found in a processor report (a dashboard refund), or
    # the part of the processor's cumulative refunded figure no itemised refund explains yet
    # (a truncated refunds list): ``processor_total``, replaced as the items arrive.
    origin = models.CharField(
        max_length=20,
        choices=[
            ("recur", "Recur"),
            ("processor", "Processor"),
            ("processor_total", "Processor total (not itemised)"),
        ],
        default="recur",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    processor_state_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(
                condition=Q(card_amount__gte=0) & Q(wallet_amount__gte=0) & Q(tax_amount__gte=0),
                name="refund_parts_nonnegative",
            ),
            models.CheckConstraint(
                condition=Q(amount=models.F("card_amount") + models.F("wallet_amount")),
                name="refund_parts_sum",
            ),
            models.UniqueConstraint(
                fields=["processor_refund_id"],
                condition=~Q(processor_refund_id=""),
                name="refund_processor_id_unique",
            ),
            # One live "not itemised" remainder per payment at most.
            models.UniqueConstraint(
                fields=["payment"],
                condition=Q(origin="processor_total", status__in=["pending", "succeeded"]),
                name="refund_one_live_processor_total",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="refund_org_created_idx"),
            models.Index(fields=["created_at"], condition=Q(status="pending"), name="refund_pending_idx"),
        ]

    def __str__(self) -> str:
        # No status: a label is read long after it is written (the audit log shows the current one).
        return f"refund of {format_amount(self.amount, self.currency)}"

    @property
    def idempotency_key(self) -> str:
        return f"refund:{self.pk}"
