"""The payment processor interface. Services talk to this, never to stripe-python.

Every mutating call takes an ``idempotency_key`` derived from business identity
(``order:<id>:attempt:<n>``), so a retried call can never charge twice.
Implementations: ``stripe_processor.StripeProcessor`` and ``manual.ManualProcessor``.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

ChargeStatus = Literal["succeeded", "processing", "requires_action", "failed", "canceled"]


LOOKUP_INCONCLUSIVE = "lookup_inconclusive"


class ProcessorError(Exception):
    """The processor could not be reached or refused the request for a reason other than a decline."""

    def __init__(self, message: str, *, retryable: bool = False, code: str = ""):
        super().__init__(message)
        self.retryable = retryable
        self.code = code


@dataclass(frozen=True)
class ChargeOutcome:
    """What became of a PaymentIntent after create, confirm or retrieve. A decline is an outcome, not an error."""

    status: ChargeStatus
    payment_intent_id: str
    charge_id: str = ""
    decline_code: str = ""
    decline_message: str = ""
    risk_level: str = ""
    client_secret: str = ""
    # What the processor says it collected, checked against the Payment when it succeeds
    # (None/"" when it does not say).
    amount_received: int | None = None
    currency: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class PaymentMethodInfo:
    id: str
    brand: str = ""
    last4: str = ""
    exp_month: int | None = None
    exp_year: int | None = None


@dataclass(frozen=True)
class RefundOutcome:
    refund_id: str
    status: Literal["pending", "succeeded", "failed", "canceled", "requires_action"]
    amount: int
    currency: str
    failure_reason: str = ""
    payment_intent_id: str = ""
    charge_id: str = ""
    metadata: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class BalanceInfo:
    """A balance transaction: ``amount`` gross, ``fee`` positive, ``net = amount - fee`` (settlement currency)."""

    id: str
    amount: int
    fee: int
    net: int
    currency: str


@dataclass(frozen=True)
class ConnectedAccount:
    id: str
    charges_enabled: bool = False
    payouts_enabled: bool = False


@dataclass(frozen=True)
class TransferOutcome:
    transfer_id: str
    amount: int
    currency: str


@dataclass(frozen=True)
class PayoutOutcome:
    payout_id: str
    status: str
    amount: int
    currency: str


class PaymentProcessor(Protocol):
    name: str

    # customers and payment methods
    def customer_upsert(
        self,
        *,
        processor_customer_id: str | None,
        email: str,
        name: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> str: ...

    def payment_method_attach(
        self, *, processor_customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> PaymentMethodInfo: ...

    def payment_method_detach(self, *, payment_method_id: str, idempotency_key: str) -> None: ...

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
    ) -> ChargeOutcome: ...

    def payment_intent_confirm(
        self, *, payment_intent_id: str, payment_method_id: str | None, idempotency_key: str
    ) -> ChargeOutcome: ...

    def payment_intent_retrieve(self, *, payment_intent_id: str) -> ChargeOutcome: ...

    def payment_intent_find(
        self, *, recur_payment_id: str, processor_customer_id: str | None, created_after: datetime
    ) -> ChargeOutcome | None:
        """The PaymentIntent whose metadata names this Recur payment, for an attempt whose
        create call never told us its id. ``None`` only when the processor proves there is
        none; raises ``ProcessorError(code="lookup_inconclusive")`` when it cannot prove it."""
        ...

    def refund_create(
        self,
        *,
        payment_intent_id: str,
        amount: int | None,
        reason: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> RefundOutcome: ...

    def refund_retrieve(self, *, refund_id: str) -> RefundOutcome: ...

    def refund_find(self, *, payment_intent_id: str, metadata: dict[str, str]) -> RefundOutcome | None:
        """The payment's refund whose metadata holds all of ``metadata`` (a refund whose id we
        never learnt), or None when the processor provably has none."""
        ...

    def balance_transaction_for_charge(self, *, charge_id: str) -> BalanceInfo | None: ...

    # Connect, for payouts
    def connected_account_create(
        self, *, country: str, email: str, idempotency_key: str
    ) -> ConnectedAccount: ...

    def connected_account_retrieve(self, *, account_id: str) -> ConnectedAccount: ...

    def transfer_create(
        self, *, amount: int, currency: str, destination: str, idempotency_key: str, metadata: dict[str, str]
    ) -> TransferOutcome: ...

    def payout_create(
        self,
        *,
        amount: int,
        currency: str,
        connected_account_id: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> PayoutOutcome: ...
