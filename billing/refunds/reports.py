"""What the processor reports about refunds, applied so that every report about one refund
converges on one ``Refund`` row with one posting, whatever the event type (``refund.*``,
``charge.refund.updated``, the ``refunds`` list of a ``charge.refunded``), the order of
delivery or the number of duplicates, and whether the refund was made in Recur or at the
processor (its dashboard).

- ``refund_report_apply``: one refund object. Ours (its metadata names the Refund, or its
  processor id is known) goes through ``services.refund_apply_outcome``; one Recur never
  made is recorded with ``origin="processor"`` and posted like any refund.
- ``refund_apply_charge_snapshot``: a charge with its cumulative ``amount_refunded`` and
  (maybe a page of) its refunds. The listed refunds are applied one by one, the cumulative
  figure is stored on the payment (``processor_amount_refunded``), and whatever part of it no
  itemised refund explains yet (a truncated list, ``has_more``, or no list at all) is recorded
  as one ``origin="processor_total"`` refund, replaced as the itemised refunds arrive. So the
  refundable amount never exceeds what the processor says is left.

Reports that cannot be true (more than the charge, another currency, a refund that names
one of our refunds but belongs to another charge) raise ``RefundReportRefused`` before
anything is written: the receiver stores the event with the reason, logs it, and no money
moves. A report above what is still refundable raises ``InvalidInput`` instead: it may be
right once an earlier refund's failure arrives, so the event is retried.
"""

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Sum

from billing.ledger.postings import ledger_post_refund, ledger_post_refund_reversal
from billing.ledger.services import order_settled_payment
from billing.orders.models import Order
from billing.orders.selectors import payment_order
from billing.payments.models import Payment
from billing.payments.processor import RefundOutcome
from billing.payments.services import payment_find
from billing.refunds import services
from billing.refunds.models import Refund
from core import clock
from core.errors import InvalidInput
from core.events.services import event_record, event_record_if_changed, event_snapshot
from core.ids import parse_uuid

logger = logging.getLogger("recur.refunds")

S = Refund.Status
PROCESSOR_TOTAL = "processor_total"


class RefundReportRefused(InvalidInput):
    """A processor report that cannot be applied as it is (stored and flagged, never retried)."""

    def __init__(self, detail: str, *, field: str | None = None):
        super().__init__(detail, field=field, code="refund_report_refused")


@dataclass(frozen=True)
class ProcessorRefund:
    """A refund as the processor describes it, whatever carried it."""

    id: str
    amount: int
    currency: str
    status: str  # a Refund.Status
    reason: str = ""
    failure_reason: str = ""
    payment_intent_id: str = ""
    charge_id: str = ""
    recur_refund_id: str = ""
    created: datetime | None = None

    @classmethod
    def from_object(cls, obj: dict, *, event_type: str = "") -> "ProcessorRefund":
        """A Stripe Refund object (``refund.*``, ``charge.refund.updated``, ``charges.refunds.data``)."""
        if not isinstance(obj, dict):
            raise RefundReportRefused("The refund is not an object.")
        amount = obj.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise RefundReportRefused(
                f"The refund's amount must be a positive integer, got {amount!r}.", field="amount"
            )
        status = services.OUTCOME_STATUS.get(str(obj.get("status") or ""), S.PENDING)
        if event_type == "refund.failed":
            status = S.FAILED
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        created = obj.get("created")
        return cls(
            id=_id(obj.get("id")),
            amount=amount,
            currency=str(obj.get("currency") or "").lower(),
            status=status,
            reason=str(obj.get("reason") or ""),
            failure_reason=str(obj.get("failure_reason") or ""),
            payment_intent_id=_id(obj.get("payment_intent")),
            charge_id=_id(obj.get("charge")),
            recur_refund_id=str(metadata.get("recur_refund_id") or ""),
            created=_timestamp(created),
        )

    @classmethod
    def from_outcome(cls, outcome: RefundOutcome) -> "ProcessorRefund":
        """A refund the processor answered a retrieve or a search with."""
        return cls(
            id=outcome.refund_id,
            amount=outcome.amount,
            currency=outcome.currency.lower(),
            status=services.OUTCOME_STATUS.get(outcome.status, S.PENDING),
            failure_reason=outcome.failure_reason,
            payment_intent_id=outcome.payment_intent_id,
            charge_id=outcome.charge_id,
            recur_refund_id=str(outcome.metadata.get("recur_refund_id") or ""),
        )


def _id(value) -> str:
    """Stripe sends a related object as an id or, expanded, as an object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _timestamp(value) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _same_charge(payment: Payment, *, payment_intent_id: str, charge_id: str) -> bool:
    """A report names the payment's charge unless one of its ids says otherwise."""
    if (
        payment_intent_id
        and payment.processor_payment_id
        and payment_intent_id != payment.processor_payment_id
    ):
        return False
    return not (charge_id and payment.processor_charge_id and charge_id != payment.processor_charge_id)


def _check_fits_payment(report: ProcessorRefund, payment: Payment) -> None:
    if not _same_charge(payment, payment_intent_id=report.payment_intent_id, charge_id=report.charge_id):
        raise RefundReportRefused(
            f"The refund {report.id or '(no id)'} belongs to another charge than the payment it names.",
            field="charge",
        )
    if report.currency != payment.currency:
        raise RefundReportRefused(
            f"The refund is in {report.currency.upper() or '(none)'}, the charge in {payment.currency.upper()}.",
            field="currency",
        )
    if report.amount > payment.amount:
        raise RefundReportRefused(
            f"The refund of {report.amount} is more than the charge of {payment.amount}.", field="amount"
        )


def _ours(report: ProcessorRefund) -> Refund | None:
    """The Refund a report is about: the id in its metadata, else its processor id."""
    if report.recur_refund_id and parse_uuid(report.recur_refund_id):
        refund = Refund.objects.select_related("payment").filter(pk=report.recur_refund_id).first()
        if refund is not None:
            return refund
    if report.id:
        return Refund.objects.select_related("payment").filter(processor_refund_id=report.id).first()
    return None


def _payment_of(report: ProcessorRefund) -> Payment | None:
    return payment_find(payment_intent_id=report.payment_intent_id, charge_id=report.charge_id, metadata={})


def refund_report_apply(
    *, report: ProcessorRefund, observed_at: datetime, payment: Payment | None = None
) -> Refund | None:
    """Apply one processor refund. Returns None (writing nothing) when it is about no payment
    of Recur's or about a payment that paid no order. Idempotent and order-independent."""
    refund = _ours(report)
    if refund is not None:
        if refund.payment is not None:
            _check_fits_payment(report, refund.payment)
            if payment is not None and payment.pk != refund.payment_id:
                raise RefundReportRefused(
                    f"The refund names Recur refund {refund.pk}, which refunds another payment.",
                    field="metadata",
                )
        if report.id and refund.processor_refund_id and refund.processor_refund_id != report.id:
            raise RefundReportRefused(
                f"The refund {report.id} names Recur refund {refund.pk}, known as {refund.processor_refund_id}.",
                field="id",
            )
        return services.refund_apply_outcome(
            refund=refund,
            status=report.status,
            processor_refund_id=report.id,
            failure_reason=report.failure_reason,
            observed_at=observed_at,
        )
    payment = payment or _payment_of(report)
    if payment is None:
        return None
    if not report.id:
        raise RefundReportRefused("A processor refund needs its id.", field="id")
    _check_fits_payment(report, payment)
    order = payment_order(payment)
    if order is None:
        return None
    settled = _settled_payment(order)
    if settled.pk != payment.pk:
        # Another attempt for the same order (a duplicate charge) paid nothing the ledger
        # knows: its refund is not the order's to record; an operator reconciles it.
        raise RefundReportRefused(
            f"The refund is of payment {payment.pk}, not of the payment that settled the order.",
            field="payment_intent",
        )
    return _record(order=order, payment=payment, report=report, observed_at=observed_at)


def _settled_payment(order: Order) -> Payment:
    """The payment that settled the order; until one has (its success not applied yet, an
    event delivered early) the report waits: ``InvalidInput`` fails the event, to be retried."""
    settled = order_settled_payment(order)
    if settled is None:
        raise InvalidInput("The order's payment has not settled yet.", code="payment_not_settled")
    return settled


def _attributed(payment: Payment) -> int:
    """The card part of the payment's live refunds, the not-itemised remainder left out."""
    live = Refund.objects.filter(payment=payment, status__in=services.ACTIVE).exclude(origin=PROCESSOR_TOTAL)
    return int(live.aggregate(total=Sum("card_amount", default=0))["total"])


def _live_remainder(payment: Payment) -> Refund | None:
    return Refund.objects.filter(payment=payment, origin=PROCESSOR_TOTAL, status__in=services.ACTIVE).first()


def _retire(remainder: Refund, why: str) -> None:
    """A not-itemised remainder replaced by what explains it: canceled, its posting reversed
    (a move no processor report may make, hence not ``refund_apply_outcome``). The caller
    holds the order's row lock."""
    remainder = Refund.objects.select_for_update(of=("self",)).select_related("payment").get(pk=remainder.pk)
    if remainder.status not in services.ACTIVE:
        return
    shown = event_snapshot(obj=remainder)
    remainder.status, remainder.failure_reason, remainder.failed_at = S.CANCELED, why[:255], clock.now()
    remainder.save(update_fields=["status", "failure_reason", "failed_at", "updated_at"])
    event_record_if_changed(type="refund.updated", obj=remainder, before=shown)
    ledger_post_refund_reversal(refund=remainder)
    services._recount(Order.objects.get(pk=remainder.order_id), remainder.payment)


def _create(order: Order, payment: Payment, *, amount: int, status: str, fields: dict) -> Refund:
    """A refund the processor made: checked against what is still refundable, then posted."""
    plan = services._plan(order, amount, reported=True)
    if plan.card_amount != amount:
        raise InvalidInput(
            f"The refund of {amount} exceeds what the card paid and is not yet refunded "
            f"({plan.card_amount}).",
            field="amount",
            code="amount_exceeds_refundable",
        )
    now = clock.now()
    refund = Refund.objects.create(
        organization=order.organization,
        order=order,
        customer=order.customer,
        payment=payment,
        currency=order.currency,
        status=status,
        amount=amount,
        card_amount=amount,
        wallet_amount=0,
        tax_amount=plan.tax_amount,
        submitted_at=now,
        succeeded_at=now if status == S.SUCCEEDED else None,
        **fields,
    )
    ledger_post_refund(refund=refund)
    services._recount(order, payment)
    event_record(type="refund.created", obj=refund)
    return refund


def _true_up(order: Order, payment: Payment, processor_total: int) -> None:
    """Make the live refunds account for ``processor_total``: the part no itemised refund
    explains becomes (or stays) the one not-itemised remainder."""
    wanted = max(processor_total - _attributed(payment), 0)
    remainder = _live_remainder(payment)
    if remainder is not None and remainder.card_amount == wanted:
        return
    if remainder is not None:
        _retire(remainder, "replaced by the processor's newer figure")
        order.refresh_from_db()
    if wanted > 0:
        _create(
            order,
            payment,
            amount=wanted,
            status=S.SUCCEEDED,
            fields={
                "reason": Refund.Reason.OTHER,
                "comment": "Refunded at the processor; not itemised yet",
                "origin": PROCESSOR_TOTAL,
                "processor_state_at": payment.processor_refunded_at,
            },
        )


def _record(*, order: Order, payment: Payment, report: ProcessorRefund, observed_at: datetime) -> Refund:
    """A refund Recur did not create, recorded once (the order's row lock serialises reports)."""
    with transaction.atomic():
        order = services._lock_order(order)
        existing = Refund.objects.filter(processor_refund_id=report.id).first()
        if existing is not None:  # a concurrent report recorded it first
            return services.refund_apply_outcome(
                refund=existing,
                status=report.status,
                processor_refund_id=report.id,
                failure_reason=report.failure_reason,
                observed_at=observed_at,
            )
        services._check_currency(order, report.currency)
        fields = {
            "reason": report.reason if report.reason in Refund.Reason.values else Refund.Reason.OTHER,
            "comment": "Refunded at the processor",
            "origin": "processor",
            "processor_refund_id": report.id,
            "processor_state_at": observed_at,
        }
        if report.status in (S.FAILED, S.CANCELED):  # moved no money: recorded, not posted
            now = clock.now()
            refund = Refund.objects.create(
                organization=order.organization,
                order=order,
                customer=order.customer,
                payment=payment,
                currency=order.currency,
                status=report.status,
                amount=report.amount,
                card_amount=report.amount,
                failure_reason=report.failure_reason[:255],
                submitted_at=now,
                failed_at=now,
                **fields,
            )
            event_record(type="refund.created", obj=refund)
            return refund
        payment = Payment.objects.get(pk=payment.pk)
        remainder = _live_remainder(payment)
        # Made before the processor's cumulative figure was read: the remainder counts it already.
        counted = remainder is not None and (
            report.created is None
            or payment.processor_refunded_at is None
            or report.created <= payment.processor_refunded_at
        )
        processor_total = _attributed(payment) + remainder.card_amount if counted else None
        if counted:
            _retire(remainder, f"itemised by {report.id}")
            order.refresh_from_db()
        refund = _create(order, payment, amount=report.amount, status=report.status, fields=fields)
        if processor_total is not None:
            order.refresh_from_db()
            _true_up(order, payment, processor_total)
    return refund


@dataclass(frozen=True)
class ChargeRefunds:
    """The refund facts of a charge snapshot."""

    amount_refunded: int | None
    refunds: list[ProcessorRefund]
    complete: bool  # the list holds every refund of the charge


def _parse_charge(charge: dict, payment: Payment) -> ChargeRefunds:
    if not _same_charge(
        payment, payment_intent_id=_id(charge.get("payment_intent")), charge_id=_id(charge.get("id"))
    ):
        raise RefundReportRefused(
            "The charge belongs to another payment than the one its metadata names.", field="id"
        )
    currency = str(charge.get("currency") or payment.currency).lower()
    if currency != payment.currency:
        raise RefundReportRefused(
            f"The charge is in {currency.upper()}, the payment in {payment.currency.upper()}.",
            field="currency",
        )
    amount_refunded = charge.get("amount_refunded")
    if amount_refunded is not None:
        if isinstance(amount_refunded, bool) or not isinstance(amount_refunded, int) or amount_refunded < 0:
            raise RefundReportRefused(
                f"Invalid amount_refunded {amount_refunded!r}.", field="amount_refunded"
            )
        if amount_refunded > payment.amount:
            raise RefundReportRefused(
                f"The charge reports {amount_refunded} refunded, more than its {payment.amount}.",
                field="amount_refunded",
            )
    listing = charge.get("refunds")
    items = listing.get("data") if isinstance(listing, dict) else None
    refunds = []
    for obj in items if isinstance(items, list) else []:
        report = ProcessorRefund.from_object(obj)
        report = replace(report, charge_id=report.charge_id or _id(charge.get("id")))
        _check_fits_payment(report, payment)
        refunds.append(report)
    live = sum(r.amount for r in refunds if r.status in services.ACTIVE)
    if amount_refunded is not None and live > amount_refunded and isinstance(items, list):
        raise RefundReportRefused(
            f"The charge lists {live} of live refunds but reports {amount_refunded} refunded.",
            field="amount_refunded",
        )
    complete = isinstance(items, list) and not (isinstance(listing, dict) and listing.get("has_more"))
    return ChargeRefunds(amount_refunded=amount_refunded, refunds=refunds, complete=complete)


def refund_apply_charge_snapshot(*, payment: Payment, charge: dict, observed_at: datetime) -> list[Refund]:
    """Apply a charge snapshot's refunds and its cumulative refunded figure (see the module
    docstring). Checks everything before writing anything. Returns the refunds it touched."""
    facts = _parse_charge(charge, payment)
    order = payment_order(payment)
    if order is None:
        return []
    if not (facts.refunds or facts.amount_refunded or payment.processor_amount_refunded):
        return []  # no refund, none before: nothing to apply (e.g. a charge.updated of a failed attempt)
    if _settled_payment(order).pk != payment.pk:
        raise RefundReportRefused(
            f"The charge is of payment {payment.pk}, not of the payment that settled the order.", field="id"
        )
    touched = []
    with transaction.atomic():
        order = services._lock_order(order)
        for report in sorted(facts.refunds, key=lambda r: (r.created or observed_at, r.id)):
            refund = refund_report_apply(report=report, observed_at=observed_at, payment=payment)
            if refund is not None:
                touched.append(refund)
        if facts.amount_refunded is None:
            return touched
        payment = Payment.objects.select_for_update(of=("self",)).get(pk=payment.pk)
        seen = payment.processor_refunded_at
        newer = (
            seen is None
            or observed_at > seen
            or (observed_at == seen and facts.amount_refunded > (payment.processor_amount_refunded or 0))
        )
        if not newer:
            return touched  # an older figure: the newer one was applied already
        payment.processor_amount_refunded = facts.amount_refunded
        payment.processor_refunded_at = observed_at
        payment.save(update_fields=["processor_amount_refunded", "processor_refunded_at", "updated_at"])
        order.refresh_from_db()
        _true_up(order, payment, facts.amount_refunded)
    return touched
