"""``ManualProcessor``: for merchants without Stripe, whose operators record payments by hand.

Nothing is charged here: a "payment" is the operator's statement that the money arrived,
so it always succeeds. Ids are derived from the idempotency key (``manual_<kind>_<hash>``),
so a retried call returns the same id, as it would from Stripe. No processor fee, and no
payouts: money never passes through Recur.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from billing.payments.processor import (
    LOOKUP_INCONCLUSIVE,
    BalanceInfo,
    ChargeOutcome,
    ConnectedAccount,
    PaymentMethodInfo,
    PayoutOutcome,
    ProcessorError,
    RefundOutcome,
    TransferOutcome,
)

PREFIX = "manual_"


def manual_id(kind: str, idempotency_key: str) -> str:
    """``manual_<kind>_<24 hex>``: the same key always gives the same id."""
    if not idempotency_key:
        raise ValueError("the manual processor derives its ids from the idempotency_key")
    digest = hashlib.sha256(f"{kind}:{idempotency_key}".encode()).hexdigest()[:24]
    return f"{PREFIX}{kind}_{digest}"


def _no_payouts() -> ProcessorError:
    return ProcessorError(
        "Manual processor cannot pay out: the merchant received the money directly",
        retryable=False,
        code="not_supported",
    )


class ManualProcessor:
    name = "manual"

    # customers and payment methods

    def customer_upsert(
        self,
        *,
        processor_customer_id: str | None,
        email: str,
        name: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> str:
        return processor_customer_id or manual_id("cus", idempotency_key)

    def payment_method_attach(
        self, *, processor_customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> PaymentMethodInfo:
        return PaymentMethodInfo(id=payment_method_id)

    def payment_method_detach(self, *, payment_method_id: str, idempotency_key: str) -> None:
        return None

    # payments

    def payment_intent_create(
        self,
        *,
        amount: int,
        currency: str,
        processor_customer_id: str | None,
        payment_method_id: str | None,
        off_session: bool,
        confirm: bool,
        idempotency_key: str,
        metadata: dict[str, str],
        description: str = "",
    ) -> ChargeOutcome:
        payment_id = manual_id("pi", idempotency_key)
        return ChargeOutcome(status="succeeded", payment_intent_id=payment_id, charge_id=payment_id)

    def payment_intent_confirm(
        self, *, payment_intent_id: str, payment_method_id: str | None, idempotency_key: str
    ) -> ChargeOutcome:
        return self.payment_intent_retrieve(payment_intent_id=payment_intent_id)

    def payment_intent_retrieve(self, *, payment_intent_id: str) -> ChargeOutcome:
        if not payment_intent_id.startswith(PREFIX):
            raise ProcessorError(f"{payment_intent_id!r} is not a manual payment", code="resource_missing")
        return ChargeOutcome(
            status="succeeded", payment_intent_id=payment_intent_id, charge_id=payment_intent_id
        )

    def payment_intent_find(
        self, *, recur_payment_id: str, processor_customer_id: str | None, created_after: datetime
    ) -> ChargeOutcome | None:
        # Manual payments are recorded by operators, never left for the processor to settle.
        raise ProcessorError("Manual payments are not looked up", code=LOOKUP_INCONCLUSIVE)

    def refund_create(
        self,
        *,
        payment_intent_id: str,
        amount: int | None,
        reason: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> RefundOutcome:
        # The manual processor keeps no record of the payment, so it cannot know a full
        # refund's amount (nor the currency: the caller owns both).
        if amount is None:
            raise ProcessorError(
                "Manual processor needs an explicit refund amount", retryable=False, code="amount_required"
            )
        return RefundOutcome(
            refund_id=manual_id("re", idempotency_key), status="succeeded", amount=amount, currency=""
        )

    def refund_retrieve(self, *, refund_id: str) -> RefundOutcome:
        # A manual refund succeeds when it is recorded; there is nothing to look up.
        raise ProcessorError(f"{refund_id!r} cannot be looked up manually", code="resource_missing")

    def refund_find(self, *, payment_intent_id: str, metadata: dict[str, str]) -> RefundOutcome | None:
        return None  # nothing was sent anywhere: recording the refund again is the answer

    def balance_transaction_for_charge(self, *, charge_id: str) -> BalanceInfo | None:
        return None  # no processor, no fee

    # Connect

    def connected_account_create(self, *, country: str, email: str, idempotency_key: str) -> ConnectedAccount:
        raise _no_payouts()

    def connected_account_retrieve(self, *, account_id: str) -> ConnectedAccount:
        raise _no_payouts()

    def transfer_create(
        self, *, amount: int, currency: str, destination: str, idempotency_key: str, metadata: dict[str, str]
    ) -> TransferOutcome:
        raise _no_payouts()

    def payout_create(
        self,
        *,
        amount: int,
        currency: str,
        connected_account_id: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> PayoutOutcome:
        raise _no_payouts()
