import pytest
from django.db import transaction

from accounts.models import Organization
from billing.payments import services
from billing.payments.models import Payment
from core.errors import InvalidInput
from core.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_attempts_count_per_reference_with_business_idempotency_keys(make_payment):
    first, second = make_payment(reference="order:1"), make_payment(reference="order:1")
    other = make_payment(reference="order:2")
    assert [(p.attempt, p.idempotency_key) for p in (first, second, other)] == [
        (1, "order:1:attempt:1"),
        (2, "order:1:attempt:2"),
        (1, "order:2:attempt:1"),
    ]


@pytest.mark.parametrize(
    ("amount", "currency", "field"),
    [(49, "usd", "amount"), (0, "usd", "amount"), (-100, "usd", "amount"), (12345, "kwd", "amount")],
)
def test_uncollectable_amounts_are_refused(make_payment, amount, currency, field):
    with pytest.raises(InvalidInput) as refused:
        make_payment(amount=amount, currency=currency)
    assert refused.value.field == field
    assert not Payment.objects.exists()


def test_unknown_trigger_is_refused(make_payment):
    with pytest.raises(InvalidInput):
        make_payment(trigger="whim")


def test_confirm_refuses_to_call_the_processor_inside_a_transaction(make_payment):
    payment = make_payment()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.payment_confirm(payment=payment)


def test_manual_processor_collects_without_stripe(org, make_payment):
    Organization.objects.filter(pk=org.pk).update(payment_processor="manual")
    org.refresh_from_db()
    payment = make_payment()
    assert payment.processor == Payment.Processor.MANUAL
    # payment_confirm refuses to run inside the test's transaction: call the processor path directly
    outcome = services.processor_for(org).payment_intent_create(
        amount=payment.amount,
        currency=payment.currency,
        processor_customer_id=None,
        payment_method_id=None,
        off_session=False,
        confirm=True,
        idempotency_key=payment.idempotency_key,
        metadata={},
    )
    assert outcome.status == "succeeded"


def test_operator_records_a_manual_payment(org, customer, operator):
    with pytest.raises(InvalidInput):
        services.payment_record_manual(
            organization=org,
            customer=customer,
            reference="order:9",
            amount=5000,
            currency="eur",
            trigger="purchase",
            actor=operator,
            note=" ",
        )
    payment = services.payment_record_manual(
        organization=org,
        customer=customer,
        reference="order:9",
        amount=5000,
        currency="eur",
        trigger="purchase",
        actor=operator,
        note="bank transfer 2026-11-20",
    )
    assert (payment.status, payment.processor) == (Payment.Status.SUCCEEDED, Payment.Processor.MANUAL)
    entry = AuditEntry.objects.get(action="payment.record_manual")
    assert entry.reason == "bank transfer 2026-11-20"
    assert entry.data == {"amount": 5000, "currency": "eur", "reference": "order:9"}
