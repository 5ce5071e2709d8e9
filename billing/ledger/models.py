"""The double-entry ledger (DESIGN.md section 4).

Every movement of money is a ``LedgerTransaction`` whose ``LedgerEntry`` rows sum to zero
per currency. The database enforces it (migration 0001): entries are never updated or
deleted, transactions are never deleted, and a deferred constraint trigger checks every
transaction's sum at commit. A mistake is corrected by a reversing transaction. Balances
are sums of entries; a positive amount is a debit, a negative amount a credit.
"""

import uuid

from django.db import models

from core import clock


class LedgerAccount(models.Model):
    class Kind(models.TextChoices):
        PROCESSOR_CASH = "processor_cash"
        TAX_PAYABLE = "tax_payable"
        PLATFORM_REVENUE = "platform_revenue"
        PROCESSOR_FEES = "processor_fees"
        MERCHANT_BALANCE = "merchant_balance"
        MERCHANT_PAYOUTS_IN_TRANSIT = "merchant_payouts_in_transit"
        CUSTOMER_WALLET = "customer_wallet"
        # The platform's side of operators' manual adjustments of merchant balances.
        ADJUSTMENTS = "adjustments"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    kind = models.CharField(max_length=40, choices=Kind.choices)
    # None: a platform account (processor cash, platform revenue, ...).
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    customer = models.ForeignKey(
        "accounts.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    currency = models.CharField(max_length=3)

    class Meta:
        ordering = ["kind", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "organization", "customer", "currency"],
                nulls_distinct=False,
                name="ledger_account_unique",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="customer_wallet") | models.Q(customer__isnull=False),
                name="ledger_account_wallet_has_customer",
            ),
        ]

    def __str__(self) -> str:
        owner = self.customer_id or self.organization_id or "platform"
        return f"{self.kind} {self.currency} ({owner})"


class LedgerTransaction(models.Model):
    class Type(models.TextChoices):
        PAYMENT = "payment"
        PROCESSOR_FEE = "processor_fee"
        PLATFORM_FEE = "platform_fee"
        REFUND = "refund"
        REFUND_REVERSAL = "refund_reversal"
        DISPUTE = "dispute"
        DISPUTE_REVERSAL = "dispute_reversal"
        DISPUTE_FEE = "dispute_fee"
        DISPUTE_FEE_REVERSAL = "dispute_fee_reversal"
        PAYOUT = "payout"
        PAYOUT_REVERSAL = "payout_reversal"
        BALANCE_ADJUSTMENT = "balance_adjustment"
        WALLET_CREDIT = "wallet_credit"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=clock.now, editable=False, db_index=True)
    type = models.CharField(max_length=30, choices=Type.choices)
    organization = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_transactions"
    )
    payment = models.ForeignKey(
        "payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    refund = models.ForeignKey(
        "refunds.Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_transactions"
    )
    dispute = models.ForeignKey(
        "disputes.Dispute",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_transactions",
    )
    customer = models.ForeignKey(
        "accounts.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    idempotency_key = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("adjust_balance", "Can adjust merchant balances and customer wallets")]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="ledger_tx_org_created_idx"),
            models.Index(fields=["organization", "type", "-created_at"], name="ledger_tx_org_type_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.idempotency_key}"


class LedgerEntry(models.Model):
    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    # Indexed by ledger_entry_balance_idx (account first), so no separate FK index.
    account = models.ForeignKey(
        LedgerAccount, on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    amount = models.BigIntegerField(help_text="Signed minor units: positive debits, negative credits.")
    currency = models.CharField(max_length=3)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "ledger entries"
        indexes = [
            # Balances: an index-only scan summing one account's amounts, optionally up to a time.
            models.Index(
                fields=["account", "created_at"], include=["amount"], name="ledger_entry_balance_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} on {self.account_id}"


class ReconciliationRun(models.Model):
    id = models.BigAutoField(primary_key=True)
    started_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    discrepancies = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"reconciliation {self.started_at:%Y-%m-%d %H:%M} {'ok' if self.ok else 'FAILED'}"


class InvariantRun(models.Model):
    """One run of the invariant checks (``billing.ledger.reconciliation.invariants``), every 10 minutes.

    ``results`` holds one item per check: ``{"name", "title", "ok", "count", "examples",
    "model", "note", "error"}``, examples being a few ids of the offending rows (``model``
    says where they link to in the backoffice)."""

    id = models.BigAutoField(primary_key=True)
    started_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    results = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["-started_at", "-id"], name="invariantrun_started_idx")]

    def __str__(self) -> str:
        return f"invariants {self.started_at:%Y-%m-%d %H:%M} {'ok' if self.ok else 'FAILED'}"

    @property
    def failing(self) -> list[dict]:
        return [result for result in self.results if not result.get("ok")]


class LedgerBalance(models.Model):
    """The running balance of one organization- or customer-owned account, kept by the
    database: an AFTER INSERT trigger on entries adds each posting's amounts, so reading a
    merchant's balance is at most ``SLOTS`` rows, not a sum over every entry. Only the
    triggers write it (direct updates and deletes are refused). Platform accounts, which
    every payment touches, have no row (a hot row would serialize all payments); their
    balance is summed. Reconciliation checks every account's slots against its entries.

    An organization-owned account (the merchant balance) is striped over ``SLOTS`` rows: a
    posting adds to the slot its transaction id hashes to (``ledger_balance_slot``), so
    concurrent postings of one merchant rarely wait for each other's commit. A customer's
    wallet keeps slot 0 only: its postings are serialized by the customer lock anyway.
    The account's balance is the sum over its slots; slot rows are created on first use."""

    SLOTS = 8

    pk = models.CompositePrimaryKey("account", "slot")
    # The primary key (account, slot) indexes the account.
    account = models.ForeignKey(
        LedgerAccount, on_delete=models.PROTECT, related_name="running_balances", db_index=False
    )
    slot = models.SmallIntegerField(default=0)
    balance = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(slot__gte=0, slot__lt=8), name="ledger_balance_slot_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account} [{self.slot}]: {self.balance}"
