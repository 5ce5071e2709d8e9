"""A real worker killed at each crash point of a renewal run with real (localstripe) charges.

Every cycle order still ends paid, or in dunning with its next attempt scheduled for a
declining card; none is charged twice; the ledger reconciles; and running the jobs again
creates nothing new. The kill happens through ``core.faults.crash_point`` (SIGKILL: no
rollback hooks, no acknowledgement), then a clean worker and the minute sweep take over.
"""

import signal
from datetime import timedelta

import pytest
import redis

from accounts.models import Customer
from accounts.services import customer_create
from billing.ledger.models import LedgerTransaction
from billing.ledger.reconciliation import reconcile
from billing.orders.models import Order
from billing.orders.selectors import orders_due_unscheduled
from billing.payments.models import Payment
from billing.subscriptions import dunning, renewals
from billing.subscriptions.models import BillingEntry, Subscription
from core import clock
from core.events import services as events_services
from core.events.models import Event, EventHandling
from tests.redis_urls import TEST_BROKER_URL
from tests.workers import Worker, send, wait_until


def finish_event_consumers() -> None:
    """What the events sweeper does for a killed worker's events: dispatch what was not, run
    what is not done (consumers are idempotent)."""
    undispatched = list(Event.objects.filter(dispatched_at__isnull=True).values_list("pk", flat=True))
    events_services.events_process(event_ids=undispatched)
    for handling_id in EventHandling.objects.exclude(status="done").values_list("pk", flat=True):
        events_services.event_handle(handling_id=handling_id)


pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]

GOOD, DECLINES = "4242424242424242", "4000000000000341"
SUBSCRIPTIONS, DECLINING = 24, 4
BEFORE_PROCESSOR_CALL = "payment.before_processor_call"
CRASH_POINTS = ["renewals.chunk_committed", "renewals.enqueue_payments_midway", BEFORE_PROCESSOR_CALL]


@pytest.fixture
def broker():
    """An empty broker database, so no message of another run reaches these workers."""
    client = redis.Redis.from_url(TEST_BROKER_URL)
    client.flushdb()
    yield
    client.flushdb()


@pytest.fixture
def due(org, make_product, stripe_client) -> dict:
    """Subscriptions whose period ended minutes ago, each customer with a saved card at
    localstripe; the first few cards decline. Returns {customer id: card number}."""
    product = make_product("Monthly", recurring="month")
    price = product.prices.get()
    now = clock.now()
    cards = {}
    for n in range(SUBSCRIPTIONS):
        number = DECLINES if n < DECLINING else GOOD
        at_stripe = stripe_client.Customer.create(email=f"renewal{n}@example.com")
        pm = stripe_client.PaymentMethod.create(
            type="card", card={"number": number, "exp_month": 12, "exp_year": 2035, "cvc": "123"}
        ).id
        stripe_client.PaymentMethod.attach(pm, customer=at_stripe.id)
        customer = customer_create(organization=org, email=f"renewal{n}@example.com")
        Customer.objects.filter(pk=customer.pk).update(
            stripe_customer_id=at_stripe.id, default_payment_method_id=pm
        )
        end = now - timedelta(minutes=n + 1)
        Subscription.objects.create(
            organization=org, customer=customer, product=product, price=price, status="active",
            currency="usd", amount=2000, billing_anchor=end, current_period_start=end - timedelta(days=30),
            current_period_end=end,
        )  # fmt: skip
        cards[customer.pk] = (number, at_stripe.id)
    return cards


def intents_by_reference(stripe_client, references: set[str]) -> dict[str, list]:
    found: dict[str, list] = {}
    for intent in stripe_client.PaymentIntent.list(limit=100).auto_paging_iter():
        reference = (intent.metadata or {}).get("recur_reference")
        if reference in references:
            found.setdefault(reference, []).append(intent)
    return found


def counts(stripe_client, references) -> tuple:
    intents = sum(len(v) for v in intents_by_reference(stripe_client, references).values())
    return (
        Order.objects.count(),
        Payment.objects.count(),
        BillingEntry.objects.count(),
        LedgerTransaction.objects.count(),
        intents,
    )


def settled(order: Order) -> bool:
    """Paid, or in dunning: the attempt failed and the next one is scheduled."""
    if order.status == Order.Status.PAID:
        return True
    latest = Payment.objects.filter(reference=order.reference).order_by("-attempt").first()
    return latest is not None and latest.status == Payment.Status.FAILED and order.next_payment_attempt_at


@pytest.mark.parametrize("crash_at", CRASH_POINTS)
def test_a_worker_killed_mid_renewal_leaves_no_order_uncharged_or_charged_twice(
    crash_at, due, broker, localstripe, stripe_client, tmp_path
):
    crashing = Worker(tmp_path / "crashing.log", RECUR_CRASH_AT=crash_at, STRIPE_API_HOST=localstripe.url)
    try:
        send("subscriptions.dispatch_renewals")  # what beat sends every minute
        assert crashing.wait_for_death(timeout=120) == -signal.SIGKILL, crashing.output()
    finally:
        crashing.stop()

    orders = Order.objects.filter(billing_reason="subscription_cycle")
    assert orders.count() == SUBSCRIPTIONS  # the chunk committed before the kill
    assert not orders_due_unscheduled().exists()  # each one is due from its row alone
    stranded = None
    if crash_at == BEFORE_PROCESSOR_CALL:
        stranded = Payment.objects.get()  # the attempt the kill interrupted
        assert stranded.status == Payment.Status.PENDING
    else:
        assert not Payment.objects.exists()

    clean = Worker(tmp_path / "clean.log", STRIPE_API_HOST=localstripe.url)
    try:
        send("subscriptions.collect_due_orders")  # beat's minute sweep
        send("subscriptions.dispatch_renewals")
        # The interrupted attempt is in flight: the collection sweeps leave it alone.
        waiting = orders.exclude(pk=stranded.reference.split(":")[1]) if stranded else orders
        wait_until(
            lambda: all(settled(order) for order in waiting.all()),
            timeout=120,
            message=lambda: f"unsettled: {[o for o in waiting.all() if not settled(o)]}\n{clean.output()}",
        )
    finally:
        clean.stop()

    references = {order.reference for order in orders}
    intents = intents_by_reference(stripe_client, references)
    now = clock.now()
    finish_event_consumers()  # the subscription follows its orders through events
    for order in orders.select_related("subscription", "customer"):
        attempts = list(Payment.objects.filter(reference=order.reference))
        assert len(attempts) == 1, order  # never a second attempt
        number, stripe_customer = due[order.customer_id]
        charges = stripe_client.Charge.list(customer=stripe_customer).data
        succeeded_charges = [c for c in charges if c.status == "succeeded"]
        if stranded is not None and attempts[0].pk == stranded.pk:
            # Killed before the processor call: nothing reached Stripe, the attempt is in
            # flight (settled by the stale-payment sweep), and collecting again reuses it.
            assert (order.status, attempts[0].status) == ("pending", "pending")
            assert order.reference not in intents and not charges
            assert dunning.order_payment_collect(order_id=order.pk).pk == stranded.pk
            assert Payment.objects.filter(reference=order.reference).count() == 1
            continue
        assert len(intents[order.reference]) == 1  # the processor was asked once
        if number == GOOD:
            assert (order.status, attempts[0].status) == ("paid", "succeeded")
            assert order.invoice_number and order.next_payment_attempt_at is None
            assert len(succeeded_charges) == 1 and succeeded_charges[0].amount == order.due
        else:
            assert (order.status, attempts[0].status) == ("pending", "failed")
            assert order.subscription.status == "past_due"
            assert order.next_payment_attempt_at > now + timedelta(days=1)  # the first dunning retry
            assert not succeeded_charges
    stranded_good = stranded is not None and due[stranded.customer_id][0] == GOOD
    assert orders.filter(status="paid").count() == SUBSCRIPTIONS - DECLINING - stranded_good
    assert not orders_due_unscheduled().exists()
    assert reconcile() == []

    before = counts(stripe_client, references)
    assert renewals.renewals_run().cycled == 0
    assert dunning.order_collections_sweep() == 0
    assert dunning.dunning_run() == 0
    assert counts(stripe_client, references) == before
