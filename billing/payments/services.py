"""Payments: one ``Payment`` per attempt, confirmed through a processor, converged by webhooks.

State moves by ``payment_apply_snapshot`` only, whatever reports it (the synchronous
confirmation, a webhook, the settlement sweeper, an operator): facts fill blanks and are
never erased; the status moves forward along the state machine (see ``RANK``),
``succeeded`` and ``canceled`` are final, and a success that took another amount or
currency than asked is held for an operator.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from accounts.locks import customer_lock
from accounts.models import Customer, Organization
from billing.money import InvalidAmount, check_chargeable, format_amount
from billing.payments.models import Payment
from billing.payments.processor import ChargeOutcome, PaymentProcessor, ProcessorError
from core import clock
from core.audit import audit_record
from core.errors import Conflict, InvalidInput
from core.faults import crash_point
from core.ids import parse_uuid
from core.locks import lock_one
from core.retry import retry_on_conflict

logger = logging.getLogger("recur.payments")

S = Payment.Status
# How far along an attempt is. A snapshot further along moves the payment whatever its
# timestamp (the synchronous answer is stamped with our clock in microseconds, an event with
# Stripe's whole seconds: they cannot be compared across states); one of the same rank moves
# it only when it is newer, compared at Stripe's one-second resolution; one behind never does.
# ``failed`` is not final at Stripe: the same PaymentIntent can be confirmed again and succeed.
RANK = {S.PENDING: 0, S.REQUIRES_ACTION: 1, S.PROCESSING: 1, S.FAILED: 2, S.CANCELED: 3, S.SUCCEEDED: 3}
FINAL = {S.SUCCEEDED, S.CANCELED}
FACT_FIELDS = (
    "processor_payment_id",
    "processor_charge_id",
    "payment_method_id",
    "client_secret",
    "decline_code",
    "decline_message",
    "risk_level",
    "risk_score",
    "balance_transaction_id",
)


@dataclass(frozen=True)
class PaymentHooks:
    """What a paid-for thing does when one of its payments settles (registered by later features)."""

    on_succeeded: Callable[[Payment], None]
    on_failed: Callable[[Payment], None]
    # The processor took money that is not what Recur asked for (``payment.hold_reason``):
    # stop collecting and flag it for an operator; never treat it as paid in full.
    on_held: Callable[[Payment], None] | None = None


# Keyed by the reference's kind, e.g. "checkout" for references "checkout:<id>".
PAYMENT_HOOKS: dict[str, PaymentHooks] = {}
# Called with the (unlocked) payment before ``payment_apply_snapshot`` locks it, keyed like
# PAYMENT_HOOKS: the owner of the reference locks its own rows first, because they come
# before payments in the lock order of ``core.locks`` (a subscription and its order, a
# checkout), and the settle hooks then find them held.
PAYMENT_LOCK_HOOKS: dict[str, Callable[[Payment], None]] = {}
# Called with customer_id= when a customer's default payment method changes (e.g. dunning retries now).
CUSTOMER_PAYMENT_METHOD_HOOKS: list[Callable[..., object]] = []


def processor_for(organization: Organization) -> PaymentProcessor:
    if organization.payment_processor == Payment.Processor.MANUAL:
        from billing.payments.manual import ManualProcessor

        return ManualProcessor()
    from billing.payments.stripe_processor import StripeProcessor

    return StripeProcessor()


def payment_find(
    *, payment_intent_id: str = "", charge_id: str = "", metadata: dict | None = None
) -> Payment | None:
    """The payment a processor object belongs to, or None when unknown or contradictory."""
    return payment_match(payment_intent_id=payment_intent_id, charge_id=charge_id, metadata=metadata)[0]


def payment_match(
    *, payment_intent_id: str = "", charge_id: str = "", metadata: dict | None = None
) -> tuple[Payment | None, str]:
    """(payment, "") for the one payment the identifiers agree on: our id in the metadata and
    the PaymentIntent id (the charge id only when neither is known). (None, why) when none is
    known or they disagree: a snapshot is never applied to a payment it may not be about."""
    candidates: dict[str, Payment | None] = {}
    payment_id = str((metadata or {}).get("recur_payment_id") or "")
    if payment_id:
        candidates["metadata"] = (
            Payment.objects.filter(pk=payment_id).first() if parse_uuid(payment_id) else None
        )
    if payment_intent_id:
        candidates["payment intent"] = Payment.objects.filter(processor_payment_id=payment_intent_id).first()
    if charge_id and not any(candidates.values()):  # the weakest id: only when the others say nothing
        candidates["charge"] = Payment.objects.filter(processor_charge_id=charge_id).first()
    found = {payment.pk: payment for payment in candidates.values() if payment is not None}
    if not found:
        return None, "no Recur payment for this object"
    if len(found) > 1:
        return None, "its ids name different Recur payments: " + ", ".join(
            f"{source} {payment.pk}" for source, payment in candidates.items() if payment is not None
        )
    payment = next(iter(found.values()))
    if payment_id and candidates["metadata"] is None:
        return None, f"its metadata names payment {payment_id[:40]}, unknown here"
    # One PaymentIntent per attempt (a PaymentIntent may have several charges: a retry).
    known = payment.processor_payment_id
    if payment_intent_id and known and known != payment_intent_id:
        return None, f"payment {payment.pk} belongs to {known}, not {payment_intent_id}"
    return payment, ""


def reference_id(payment: Payment, kind: str) -> str | None:
    """The id in a payment's reference ("order:<uuid>"), if it is of this kind and well-formed."""
    prefix, _, value = payment.reference.partition(":")
    return value if prefix == kind and parse_uuid(value) else None


def _settle_hooks(payment: Payment) -> PaymentHooks | None:
    return PAYMENT_HOOKS.get(payment.reference.split(":", 1)[0])


def _second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _moves(payment: Payment, status: str, observed_at: datetime) -> bool:
    """Whether a snapshot of ``status`` taken at ``observed_at`` moves the payment (see RANK)."""
    if payment.is_final or status == payment.status:
        return False
    if RANK[status] != RANK[payment.status]:
        return RANK[status] > RANK[payment.status]
    seen = payment.processor_state_at
    return seen is None or _second(observed_at) > _second(seen)


def _mismatch(payment: Payment, amount_received: int | None, currency: str) -> str:
    """Why a success must be held: the processor collected another amount or currency."""
    currency = (currency or payment.currency).lower()
    received = payment.amount if amount_received is None else int(amount_received)
    if (received, currency) == (payment.amount, payment.currency):
        return ""
    return (
        f"The processor collected {_amount_text(received, currency)} but this payment asked for "
        f"{_amount_text(payment.amount, payment.currency)}."
    )[:300]


def _amount_text(amount: int, currency: str) -> str:
    try:
        return format_amount(amount, currency)
    except Exception:  # a currency our table does not know: still say what arrived
        return f"{amount} {currency.upper()} (minor units)"


def _lock(payment: Payment) -> Payment:
    reference = Payment.objects.filter(pk=payment.pk).values_list("reference", flat=True).get()
    lock_owner = PAYMENT_LOCK_HOOKS.get(reference.split(":", 1)[0])
    if lock_owner is not None:
        lock_owner(Payment(pk=payment.pk, reference=reference))
    return lock_one(Payment, payment.pk)


@retry_on_conflict
@transaction.atomic
def payment_apply_snapshot(
    *,
    payment: Payment,
    status: str,
    observed_at: datetime,
    facts: dict[str, Any] | None = None,
    amount_refunded: int | None = None,
    amount_received: int | None = None,
    currency: str = "",
) -> Payment:
    """Apply what the processor (or an operator) says about an attempt. ``amount_received`` and
    ``currency`` are what the processor says it collected; a success that differs from the
    payment is held for an operator instead of settling what it paid for."""
    payment = _lock(payment)
    changed: set[str] = set()
    for name, value in (facts or {}).items():
        if name in FACT_FIELDS and value not in ("", None) and getattr(payment, name) in ("", None):
            setattr(payment, name, value)
            changed.add(name)
    if amount_refunded is not None and payment.amount_refunded < int(amount_refunded) <= payment.amount:
        payment.amount_refunded = int(amount_refunded)
        changed.add("amount_refunded")
    moves = _moves(payment, status, observed_at)
    if moves or (status == payment.status and not payment.is_final):
        # The newest processor time seen for the state the payment is in (never backwards).
        newest = max(filter(None, (payment.processor_state_at, observed_at)))
        if payment.processor_state_at != _second(newest):
            payment.processor_state_at = _second(newest)
            changed.add("processor_state_at")

    if moves:
        previous = payment.status
        payment.status = status
        changed.add("status")
        if status == S.SUCCEEDED:
            charge_id = (facts or {}).get("processor_charge_id")
            if charge_id and charge_id != payment.processor_charge_id:
                # After a declined try the same intent succeeds with a new charge: that one holds the money.
                payment.processor_charge_id = charge_id
                changed.add("processor_charge_id")
            payment.succeeded_at = clock.now()
            payment.hold_reason = _mismatch(payment, amount_received, currency)
            changed |= {"succeeded_at", "hold_reason"}
            if payment.hold_reason:
                logger.warning("payment %s held: %s", payment.pk, payment.hold_reason)
            if payment.processor == Payment.Processor.STRIPE:
                _enqueue_fee_record_on_commit(payment.pk)
        elif status == S.FAILED:
            payment.failed_at = clock.now()
            changed.add("failed_at")
        payment.save(update_fields=[*changed, "updated_at"])
        changed.clear()
        _run_settle_hook(payment, previous)
    if changed:
        payment.save(update_fields=[*changed, "updated_at"])
    return payment


def _run_settle_hook(payment: Payment, previous: str) -> None:
    """Tell what the payment is for that this attempt ended. A cancellation ends it like a
    failure (no money), unless the failure was already reported."""
    hooks = _settle_hooks(payment)
    if hooks is None:
        return
    if payment.status == S.SUCCEEDED:
        if not payment.hold_reason:
            hooks.on_succeeded(payment)
        elif hooks.on_held is not None:
            hooks.on_held(payment)
    elif payment.status == S.FAILED or (payment.status == S.CANCELED and previous != S.FAILED):
        hooks.on_failed(payment)


def payments_hold_release(*, reference: str) -> int:
    """Mark the held payments of ``reference`` as dealt with by an operator (in the caller's
    transaction). They keep their hold reason: they never count as paying anything."""
    return (
        Payment.objects.filter(reference=reference, hold_released_at__isnull=True)
        .exclude(hold_reason="")
        .update(hold_released_at=clock.now())
    )


def _enqueue_fee_record_on_commit(payment_id) -> None:
    """Read the processor's fee of a succeeded payment after commit (billing.ledger.fees);
    a lost message or a broker hiccup is caught up by the fee sweeper, so it never fails
    the commit (robust)."""

    def enqueue() -> None:
        from billing.ledger.tasks import record_payment_fee

        record_payment_fee.delay(str(payment_id))

    transaction.on_commit(enqueue, robust=True)


def _next_attempt(reference: str) -> int:
    return (Payment.objects.filter(reference=reference).aggregate(n=Max("attempt"))["n"] or 0) + 1


def payment_create(
    *,
    organization: Organization,
    customer: Customer | None,
    reference: str,
    amount: int,
    currency: str,
    trigger: str,
    payment_method_id: str = "",
    off_session: bool = False,
    metadata: dict[str, str] | None = None,
) -> Payment:
    """A new attempt for ``reference``, committed before any processor call."""
    try:
        check_chargeable(amount, currency)
    except InvalidAmount as exc:
        raise InvalidInput(str(exc), field="amount", code="invalid_amount") from exc
    if trigger not in Payment.Trigger.values:
        raise InvalidInput(f"Unknown trigger {trigger!r}.", field="trigger")
    for _ in range(3):
        try:
            with transaction.atomic():
                attempt = _next_attempt(reference)
                return Payment.objects.create(
                    organization=organization,
                    customer=customer,
                    reference=reference,
                    attempt=attempt,
                    trigger=trigger,
                    processor=organization.payment_processor,
                    amount=amount,
                    currency=currency,
                    idempotency_key=f"{reference}:attempt:{attempt}",
                    payment_method_id=payment_method_id,
                    off_session=off_session,
                    metadata=metadata or {},
                )
        except IntegrityError:  # a concurrent attempt took this number
            continue
    raise Conflict(
        "Another payment attempt for this is being created; try again.", code="attempt_in_progress"
    )


def customer_processor_sync(*, customer: Customer, processor: PaymentProcessor | None = None) -> str:
    """The customer's id at the processor, creating or updating it there."""
    processor = processor or processor_for(customer.organization)
    processor_id = processor.customer_upsert(
        processor_customer_id=customer.stripe_customer_id or None,
        email=customer.email,
        name=customer.name,
        metadata={
            "recur_customer_id": str(customer.pk),
            "recur_organization_id": str(customer.organization_id),
        },
        idempotency_key=f"customer:{customer.pk}:sync:{int(customer.updated_at.timestamp())}",
    )
    if processor_id != customer.stripe_customer_id:
        Customer.objects.filter(pk=customer.pk).update(stripe_customer_id=processor_id)
        customer.stripe_customer_id = processor_id
    return processor_id


def _outcome_facts(outcome: ChargeOutcome) -> dict[str, Any]:
    return {
        "processor_payment_id": outcome.payment_intent_id,
        "processor_charge_id": outcome.charge_id,
        "decline_code": outcome.decline_code,
        "decline_message": outcome.decline_message,
        "risk_level": outcome.risk_level,
        "client_secret": outcome.client_secret,
    }


OUTCOME_STATUS = {
    "succeeded": S.SUCCEEDED,
    "processing": S.PROCESSING,
    "requires_action": S.REQUIRES_ACTION,
    "failed": S.FAILED,
    "canceled": S.CANCELED,
}


def payment_confirm(*, payment: Payment, processor: PaymentProcessor | None = None) -> Payment:
    """Ask the processor to collect a pending attempt. Runs outside any transaction or lock.
    The create is sent at most once per claim: a caller that finds the attempt already
    submitted (a redelivered task, a second click) leaves it to the processor's answer, a
    webhook or the settlement sweeper (billing.payments.settlement), so two workers never
    send the same create concurrently."""
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("payment_confirm calls the processor; call it after commit, outside transactions")
    payment.refresh_from_db()
    submitted = payment.submitted_at is not None
    if payment.status != S.PENDING or submitted or not payment_submission_claim(payment=payment):
        return Payment.objects.get(pk=payment.pk)
    return payment_submit(payment=payment, processor=processor)


def payment_submission_claim(*, payment: Payment) -> bool:
    """Take the right to send this attempt's create: a conditional UPDATE from the submission
    the caller saw (none, or a stale one the settlement sweeper takes over)."""
    claimed = Payment.objects.filter(
        pk=payment.pk, status=S.PENDING, processor_payment_id="", submitted_at=payment.submitted_at
    )
    if payment.submitted_at is None:
        claimed = Payment.objects.filter(
            pk=payment.pk, status=S.PENDING, processor_payment_id="", submitted_at__isnull=True
        )
    now = clock.now()
    if not claimed.update(submitted_at=now, updated_at=now):
        return False
    payment.submitted_at = now
    return True


def payment_submit(*, payment: Payment, processor: PaymentProcessor | None = None) -> Payment:
    """Send the create of a claimed attempt, with its idempotency key, and apply the answer."""
    processor = processor or processor_for(payment.organization)
    try:
        # Inside the try: a customer the processor no longer has (resource_missing) fails this
        # attempt with the processor's message instead of escaping to the caller.
        customer_id = (
            customer_processor_sync(customer=payment.customer, processor=processor)
            if payment.customer
            else None
        )
        crash_point("payment.before_processor_call")
        outcome = processor.payment_intent_create(
            amount=payment.amount,
            currency=payment.currency,
            processor_customer_id=customer_id,
            payment_method_id=payment.payment_method_id or None,
            off_session=payment.off_session,
            confirm=True,
            idempotency_key=payment.idempotency_key,
            metadata={
                "recur_payment_id": str(payment.pk),
                "recur_reference": payment.reference,
                "recur_organization_id": str(payment.organization_id),
            },
        )
    except ProcessorError as exc:
        if exc.retryable:
            # Unknown outcome: the webhook (matched by metadata) or the settlement sweeper
            # (looks the intent up by metadata, or sends the same key again) settles it.
            logger.warning("processor unreachable for %s: %s", payment.idempotency_key, exc)
            Payment.objects.filter(pk=payment.pk).update(note=f"processor unreachable: {exc}"[:500])
            return Payment.objects.get(pk=payment.pk)
        return payment_apply_snapshot(
            payment=payment,
            status=S.FAILED,
            observed_at=clock.now(),
            facts={"decline_code": exc.code or "processor_error", "decline_message": str(exc)},
        )
    crash_point("payment.after_processor_call")
    return payment_apply_outcome(payment=payment, outcome=outcome)


def payment_apply_outcome(*, payment: Payment, outcome: ChargeOutcome) -> Payment:
    """A processor's answer about an attempt (create, confirm or retrieve), as a snapshot now."""
    return payment_apply_snapshot(
        payment=payment,
        status=OUTCOME_STATUS[outcome.status],
        observed_at=clock.now(),
        facts=_outcome_facts(outcome),
        amount_received=outcome.amount_received,
        currency=outcome.currency,
    )


@retry_on_conflict
@transaction.atomic
def payment_record_manual(
    *,
    organization: Organization,
    customer: Customer | None,
    reference: str,
    amount: int,
    currency: str,
    trigger: str,
    actor,
    note: str,
) -> Payment:
    """An operator records money received outside Stripe (bank transfer, cash). Audited."""
    if not note.strip():
        raise InvalidInput("Say how the money was received.", field="note", code="required")
    payment = payment_create(
        organization=organization,
        customer=customer,
        reference=reference,
        amount=amount,
        currency=currency,
        trigger=trigger,
    )
    Payment.objects.filter(pk=payment.pk).update(processor=Payment.Processor.MANUAL, note=note)
    payment = payment_apply_snapshot(
        payment=payment,
        status=S.SUCCEEDED,
        observed_at=clock.now(),
        facts={"processor_payment_id": f"manual_{payment.pk.hex}"},
    )
    audit_record(
        actor=actor,
        action="payment.record_manual",
        target=payment,
        organization=organization,
        reason=note,
        data={"amount": amount, "currency": currency, "reference": reference},
    )
    return payment


@retry_on_conflict
@transaction.atomic
def customer_payment_method_saved(*, processor_customer_id: str, payment_method_id: str) -> Customer | None:
    """A card saved at the processor becomes the customer's default payment method."""
    if not processor_customer_id or not payment_method_id:
        return None
    customer = Customer.objects.filter(stripe_customer_id=processor_customer_id).first()
    if customer is None or customer.default_payment_method_id == payment_method_id:
        return customer
    # The hooks touch the customer's orders, which come before the customer in the lock
    # order (core.locks): they run first, then the customer row is locked and changed.
    for hook in CUSTOMER_PAYMENT_METHOD_HOOKS:
        hook(customer_id=customer.pk)
    customer = customer_lock(customer.pk)
    customer.default_payment_method_id = payment_method_id
    customer.save(update_fields=["default_payment_method_id", "updated_at"])
    return customer
