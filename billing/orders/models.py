import uuid

from django.db import models
from django.db.models import F, Q

from core.models import BaseModel


class BillingReason(models.TextChoices):
    PURCHASE = "purchase"
    SUBSCRIPTION_CREATE = "subscription_create"
    SUBSCRIPTION_CYCLE = "subscription_cycle"
    SUBSCRIPTION_CYCLE_AFTER_TRIAL = "subscription_cycle_after_trial"
    SUBSCRIPTION_UPDATE = "subscription_update"


class Order(BaseModel):
    """What a customer owes for one purchase or one billing period. pending -> paid ->
    partially_refunded | refunded; pending -> void. Amounts in minor units of ``currency``:
    net = subtotal - discount; total = net + tax (tax is already inside net when
    ``tax_inclusive``); due = max(0, total - applied_balance); ``carried_forward`` is the part of
    ``applied_balance`` the processor could not have charged (below its minimum)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        PAID = "paid"
        PARTIALLY_REFUNDED = "partially_refunded"
        REFUNDED = "refunded"
        VOID = "void"

    # The money was taken: what the ledger posts, refunds start from and reports count.
    PAID_STATUSES = (Status.PAID, Status.PARTIALLY_REFUNDED, Status.REFUNDED)

    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="orders")
    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    billing_reason = models.CharField(max_length=40, choices=BillingReason.choices)
    invoice_number = models.CharField(max_length=40, null=True, blank=True)
    currency = models.CharField(max_length=3)
    subtotal = models.BigIntegerField()
    discount_amount = models.BigIntegerField(default=0)
    net = models.BigIntegerField()
    tax = models.BigIntegerField(default=0)
    total = models.BigIntegerField()
    applied_balance = models.BigIntegerField(
        default=0,
        help_text="Paid from (positive) or collected for (negative: owed) the customer's balance.",
    )
    # Part of the total the processor could not charge on its own (below its minimum): paid
    # from the customer's balance, which the next order collects (billing.ledger.wallet).
    carried_forward = models.BigIntegerField(default=0, db_default=0)
    due = models.BigIntegerField()
    refunded_amount = models.BigIntegerField(default=0)
    platform_fee = models.BigIntegerField(default=0)
    tax_rate_bps = models.PositiveIntegerField(default=0)
    tax_inclusive = models.BooleanField(default=False)
    reverse_charge = models.BooleanField(default=False)
    billing_name = models.CharField(max_length=255, blank=True)
    billing_address = models.JSONField(null=True, blank=True)
    customer_tax_id = models.CharField(max_length=64, blank=True)

    checkout = models.OneToOneField(
        "checkout.Checkout", null=True, blank=True, on_delete=models.PROTECT, related_name="order"
    )
    subscription = models.ForeignKey(
        "subscriptions.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    product = models.ForeignKey(
        "catalog.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    discount = models.ForeignKey(
        "catalog.Discount", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Dunning: when the next automatic payment attempt is due (None: none scheduled), how many
    # automatic retries were used, and the deadline after which the subscription gives up.
    next_payment_attempt_at = models.DateTimeField(null=True, blank=True)
    dunning_attempts = models.PositiveSmallIntegerField(default=0)
    dunning_deadline = models.DateTimeField(null=True, blank=True)
    # Why collection is stopped until an operator acts, e.g. a payment that took another
    # amount or currency than the order's (billing.payments hold). Blank: not held.
    payment_hold = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["next_payment_attempt_at"],
                condition=Q(status="pending", next_payment_attempt_at__isnull=False),
                name="order_dunning_due_idx",
            ),
            models.Index(fields=["organization", "-created_at"], name="order_org_created_idx"),
            models.Index(fields=["organization", "status"], name="order_org_status_idx"),
            models.Index(fields=["customer", "-created_at"], name="order_customer_idx"),
            # The invariant "every due order has an attempt scheduled" (billing.ledger.reconciliation.invariants)
            # reads pending orders only: few, whatever the size of the table.
            models.Index(
                fields=["created_at"], condition=Q(status="pending"), name="order_pending_created_idx"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "invoice_number"],
                condition=Q(invoice_number__isnull=False),
                name="order_invoice_number_unique",
            ),
            # One order per subscription, period and reason: a period cannot be billed twice.
            models.UniqueConstraint(
                fields=["subscription", "period_start", "billing_reason"],
                condition=Q(subscription__isnull=False),
                name="order_one_per_subscription_period",
            ),
            models.CheckConstraint(condition=Q(net=F("subtotal") - F("discount_amount")), name="order_net"),
            models.CheckConstraint(
                condition=Q(tax_inclusive=True, total=F("net"))
                | Q(tax_inclusive=False, total=F("net") + F("tax")),
                name="order_total",
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("total")),
                name="order_refunded_range",
            ),
        ]

    def __str__(self) -> str:
        return self.invoice_number or f"order {self.pk}"

    @property
    def reference(self) -> str:
        return f"order:{self.pk}"

    @property
    def is_paid(self) -> bool:
        return self.status in self.PAID_STATUSES


class OrderItem(BaseModel):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    label = models.CharField(max_length=300)
    amount = models.BigIntegerField(help_text="Line total in minor units; negative for credits.")
    quantity = models.PositiveIntegerField(default=1)
    proration = models.BooleanField(default=False)
    price = models.ForeignKey(
        "catalog.Price", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.label


class InvoiceCounter(models.Model):
    """The next invoice number of an organization, on a row of its own: numbering holds this
    row until the order's transaction commits (gapless), and nothing else ever locks it, so
    it serializes only the paid transitions of one organization, from the moment they are
    numbered (the last lock they take) to their commit. Created on first use, starting at
    ``Organization.invoice_next_number``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, related_name="invoice_counter"
    )
    next_number = models.PositiveBigIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.next_number}"
