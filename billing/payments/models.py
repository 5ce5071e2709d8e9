from django.db import models
from django.db.models import F, Q

from billing.money import format_amount
from core import clock
from core.models import BaseModel


class Payment(BaseModel):
    """One attempt to collect money: one row per PaymentIntent (or manual record)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        REQUIRES_ACTION = "requires_action"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELED = "canceled"

    class Trigger(models.TextChoices):
        PURCHASE = "purchase"
        CYCLE = "cycle"
        DUNNING_RETRY = "dunning_retry"
        CUSTOMER_RETRY = "customer_retry"
        OPERATOR_RETRY = "operator_retry"
        SUBSCRIPTION_CHANGE = "subscription_change"  # a plan or seat change billed now

    class Processor(models.TextChoices):
        STRIPE = "stripe"
        MANUAL = "manual"

    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.PROTECT, related_name="payments"
    )
    customer = models.ForeignKey(
        "accounts.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    # What is being paid, e.g. "checkout:<uuid>" or "order:<uuid>"; attempts count per reference.
    reference = models.CharField(max_length=100)
    attempt = models.PositiveIntegerField()
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    processor = models.CharField(max_length=20, choices=Processor.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    amount_refunded = models.BigIntegerField(default=0)
    # The processor's own cumulative refunded figure (a charge's ``amount_refunded``), as of
    # ``processor_refunded_at``; written by the refunds feature, null until reported.
    processor_amount_refunded = models.BigIntegerField(null=True, blank=True)
    processor_refunded_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    off_session = models.BooleanField(default=False)

    processor_payment_id = models.CharField(max_length=255, blank=True, db_index=True)
    processor_charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    payment_method_id = models.CharField(max_length=255, blank=True)
    client_secret = models.CharField(max_length=255, blank=True)
    decline_code = models.CharField(max_length=100, blank=True)
    decline_message = models.TextField(blank=True)
    risk_level = models.CharField(max_length=30, blank=True)
    risk_score = models.PositiveSmallIntegerField(null=True, blank=True)
    balance_transaction_id = models.CharField(max_length=255, blank=True)
    fee = models.BigIntegerField(null=True, blank=True)
    net = models.BigIntegerField(null=True, blank=True)
    # Time of the newest processor snapshot applied; older snapshots never overwrite newer state.
    processor_state_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    # When Recur first asked the processor to create this attempt's PaymentIntent (claimed by a
    # conditional UPDATE, so two workers never both send the create; see payment_confirm).
    submitted_at = models.DateTimeField(null=True, blank=True)
    # When the settlement sweeper may next ask the processor about this attempt (None: as soon
    # as it is overdue; see billing.payments.settlement).
    settle_check_at = models.DateTimeField(null=True, blank=True)
    # Set when the processor took money that differs from what Recur asked for (amount or
    # currency): the payment is kept, its success hook is not run, an operator decides.
    hold_reason = models.CharField(max_length=300, blank=True)
    hold_released_at = models.DateTimeField(
        null=True, blank=True, help_text="When an operator dealt with the hold."
    )
    failed_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["reference", "attempt"], name="payment_attempt_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=F("amount")),
                name="payment_refunded_within_amount",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="payment_org_created_idx"),
            models.Index(fields=["organization", "status"], name="payment_org_status_idx"),
            # The processor-fee sweeper (billing.ledger.fees): succeeded Stripe payments whose
            # fee is not read yet, least recently tried first. Tiny: fees are read within minutes.
            models.Index(
                fields=["updated_at"],
                condition=Q(status="succeeded", processor="stripe", fee__isnull=True)
                & ~Q(processor_charge_id=""),
                name="payment_fee_pending_idx",
            ),
            # Invariants (billing.ledger.reconciliation.invariants): attempts still in flight, and payments the
            # processor reports refunded; both small slices of the table.
            models.Index(
                fields=["created_at"],
                condition=Q(status__in=["pending", "processing", "requires_action"]),
                name="payment_in_flight_idx",
            ),
            models.Index(
                fields=["updated_at"], condition=Q(amount_refunded__gt=0), name="payment_refunded_idx"
            ),
            # The settlement sweeper: Stripe attempts still in flight (a handful at any time).
            models.Index(
                fields=["created_at"],
                condition=Q(status__in=["pending", "requires_action", "processing"], processor="stripe"),
                name="payment_unsettled_idx",
            ),
            models.Index(
                fields=["created_at"],
                condition=~Q(hold_reason="") & Q(hold_released_at__isnull=True),
                name="payment_held_idx",
            ),
        ]

    def __str__(self) -> str:
        # What operators read in titles and audit lines; the reference is on the page.
        kind = self.reference.partition(":")[0] or "payment"
        return f"{format_amount(self.amount, self.currency)} {kind} payment · attempt {self.attempt} ({self.status})"

    @property
    def is_held(self) -> bool:
        return bool(self.hold_reason)

    @property
    def is_final(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.CANCELED} or (
            self.status == self.Status.FAILED and self.processor == self.Processor.MANUAL
        )


class ExternalEvent(models.Model):
    """A verified event from Stripe, unique by its id; the queue our handlers work from."""

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSED = "processed"
        FAILED = "failed"
        IGNORED = "ignored"
        DEFERRED = "deferred"  # routed and stored; its business handling lands with a later feature

    id = models.BigAutoField(primary_key=True)
    source = models.CharField(max_length=20, default="stripe")
    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    livemode = models.BooleanField(default=False)
    occurred_at = models.DateTimeField(help_text="When the processor created the event.")
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    note = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField(default=clock.now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    delivery = models.ForeignKey(
        "djstripe.WebhookEventTrigger", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        permissions = [
            ("replay_externalevent", "Can replay external events"),
            ("ignore_externalevent", "Can mark external events ignored"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="extevent_status_next_idx"),
            models.Index(fields=["type", "-received_at"], name="extevent_type_recv_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"

    @property
    def object(self) -> dict:
        return (self.payload.get("data") or {}).get("object") or {}
