"""A payment the processor took with another amount or currency: flagged on the order page,
the payments list and the dashboard; the operator releases the hold (reason required,
audited) and collection resumes with a new attempt."""

import uuid

import pytest
from django.urls import reverse

from billing.orders.models import Order
from billing.orders.services import Line, order_create
from billing.payments import services
from billing.payments.models import Payment
from core import clock
from core.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def held_order(org, customer):
    order = order_create(
        organization=org,
        customer=customer,
        billing_reason="purchase",
        currency="usd",
        lines=[Line(label="E-book", amount=2000)],
    )
    payment = services.payment_create(
        organization=org,
        customer=customer,
        reference=order.reference,
        amount=2000,
        currency="usd",
        trigger="cycle",
    )
    services.payment_apply_snapshot(
        payment=payment,
        status="succeeded",
        observed_at=clock.now(),
        facts={"processor_payment_id": f"pi_{uuid.uuid4().hex[:24]}"},
        amount_received=1500,
        currency="usd",
    )
    order.refresh_from_db()
    return order


def action_url(order, name: str) -> str:
    return reverse(f"admin:orders_order_{name}", args=[order.pk])


def change_url(order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])


def test_the_hold_shows_on_the_order_page_the_list_and_the_dashboard(backoffice, held_order):
    page = backoffice.get(change_url(held_order)).content.decode()
    assert "payment held" in page and "held for review" in page
    assert "collected $15.00 but this payment asked for $20.00" in page
    assert action_url(held_order, "release_payment_hold") in page
    assert action_url(held_order, "retry_payment") not in page  # no second charge on top

    listing = backoffice.get(reverse("admin:orders_order_changelist") + "?payment_held=yes")
    assert list(listing.context["cl"].result_list) == [held_order]
    payments = backoffice.get(reverse("admin:payments_payment_changelist") + "?held=yes")
    assert [p.reference for p in payments.context["cl"].result_list] == [held_order.reference]

    cards = {card.key: card for card in backoffice.get(reverse("admin:index")).context["cards"]}
    assert (cards["held_payments"].value, cards["held_payments"].tone) == ("1", "bad")


def test_releasing_needs_a_reason_then_audits_and_resumes_collection(backoffice, htmx, operator, held_order):
    url = action_url(held_order, "release_payment_hold")
    refused = backoffice.post(url, {"reason": ""}, **htmx)
    assert "HX-Redirect" not in refused.headers
    assert Order.objects.get(pk=held_order.pk).payment_hold

    done = backoffice.post(url, {"reason": "refunded the $15.00 in the Stripe dashboard"}, **htmx)
    assert done.headers["HX-Redirect"] == change_url(held_order)
    held_order.refresh_from_db()
    assert held_order.payment_hold == "" and held_order.next_payment_attempt_at is not None
    assert held_order.status == Order.Status.PENDING
    entry = AuditEntry.objects.get(action="order.release_payment_hold")
    assert (entry.actor, entry.reason) == (operator, "refunded the $15.00 in the Stripe dashboard")
    # The held payment stays on record and still never counts as paying the order.
    held = Payment.objects.get(reference=held_order.reference)
    assert held.hold_reason and held.hold_released_at is not None
    assert services.payments_hold_release(reference=held_order.reference) == 0  # once
    cards = {card.key: card for card in backoffice.get(reverse("admin:index")).context["cards"]}
    assert cards["held_payments"].value == "0"


def test_a_retry_of_a_held_order_is_a_conflict_and_charges_nothing(operator, held_order):
    from billing.subscriptions.services import order_payment_retry
    from core.errors import Conflict

    with pytest.raises(Conflict) as refused:
        order_payment_retry(order=held_order, actor=operator)
    assert refused.value.code == "order_payment_held"
    assert Payment.objects.filter(reference=held_order.reference).count() == 1
    assert not AuditEntry.objects.filter(action="order.retry_payment").exists()
