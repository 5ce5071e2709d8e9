"""Concurrency never surfaces as an error: locks take only the rows they mean, a deadlock
the database breaks is retried by the service layer, and what still loses is a 409."""

import threading

import psycopg
import pytest
from celery import shared_task
from django.db import OperationalError, connection, connections, transaction

from accounts import services as account_services
from accounts.models import Customer, Organization
from billing.orders.models import InvoiceCounter
from billing.orders.services import invoice_number_assign
from billing.subscriptions.locks import subscription_lock
from billing.subscriptions.models import Subscription
from core.api.errors import api_exception_handler
from core.errors import InvalidInput
from core.locks import lock_one
from core.retry import ATTEMPTS, ConcurrentUpdate, retry_on_conflict

pytestmark = pytest.mark.django_db(transaction=True)


def _deadlock() -> OperationalError:
    error = OperationalError("deadlock detected")
    error.__cause__ = psycopg.errors.DeadlockDetected("deadlock detected")
    return error


def _in_thread(target, *args):
    """Run ``target`` on its own database connection; returns (thread, outcome dict)."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = target(*args)
        except BaseException as exc:  # reported to the test
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.fixture
def two_customers(org):
    return [Customer.objects.create(organization=org, email=f"c{n}@example.com") for n in range(2)]


def test_a_real_deadlock_is_retried_and_both_transactions_finish(two_customers):
    first, second = two_customers
    both_hold_one = threading.Barrier(2, timeout=10)
    calls = []

    @retry_on_conflict
    def lock_in(order):
        with transaction.atomic():
            calls.append(order[0])
            lock_one(Customer, order[0].pk)
            if len(calls) <= 2:  # the first round: make both wait for the other
                both_hold_one.wait()
            lock_one(Customer, order[1].pk)
        return "done"

    runs = [_in_thread(lock_in, order) for order in ((first, second), (second, first))]
    for thread, _ in runs:
        thread.join(timeout=30)
    assert [outcome for _, outcome in runs] == [{"value": "done"}, {"value": "done"}]
    assert len(calls) == 3  # PostgreSQL broke the deadlock once; the loser ran again


def test_a_transaction_that_keeps_losing_is_a_conflict_not_a_crash():
    calls = []

    @retry_on_conflict
    def always_loses():
        with transaction.atomic():
            calls.append(1)
            raise _deadlock()

    with pytest.raises(ConcurrentUpdate) as caught:
        always_loses()
    assert len(calls) == ATTEMPTS
    assert (caught.value.status, caught.value.code) == (409, "concurrent_update")


def test_inside_an_enclosing_transaction_the_outermost_caller_retries():
    calls = []

    @retry_on_conflict
    def inner():
        calls.append(1)
        raise _deadlock()

    @retry_on_conflict
    def outer():
        with transaction.atomic():
            inner()

    with pytest.raises(ConcurrentUpdate):
        outer()
    assert len(calls) == ATTEMPTS  # once per outer attempt, never inside the lost transaction


def test_other_database_errors_are_not_retried():
    calls = []

    @retry_on_conflict
    def broken():
        calls.append(1)
        raise OperationalError("connection refused")

    with pytest.raises(OperationalError):
        broken()
    assert len(calls) == 1


def test_a_deadlock_that_reaches_the_api_is_a_409():
    response = api_exception_handler(_deadlock(), {})
    assert response.status_code == 409
    assert response.data["code"] == "concurrent_update" and response.data["type"] == "conflict_error"


RUNS = []


@shared_task(name="tests.flaky_database_task")
def flaky_database_task():
    RUNS.append(1)
    if len(RUNS) < 3:
        raise _deadlock()
    return "done"


def test_a_task_that_lost_a_race_is_retried_not_failed():
    RUNS.clear()
    result = flaky_database_task.apply()
    assert result.state == "SUCCESS" and result.result == "done"
    assert len(RUNS) == 3


# --- locks take only the rows they mean ------------------------------------------------------


def _nowait(sql: str, params) -> None:
    """Lock a row from another connection without waiting (raises if someone holds it)."""
    with connection.cursor() as cursor:
        cursor.execute(sql + " NOWAIT", params)


def _hold(lock, release: threading.Event, held: threading.Event):
    with transaction.atomic():
        lock()
        held.set()
        release.wait(timeout=20)


def _while_held(lock, check) -> None:
    release, held = threading.Event(), threading.Event()
    thread, outcome = _in_thread(_hold, lock, release, held)
    try:
        assert held.wait(timeout=10), outcome
        with transaction.atomic():
            check()
    finally:
        release.set()
        thread.join(timeout=30)
    assert "error" not in outcome, outcome


@pytest.fixture
def subscription(org, customer, make_product):
    from django.utils import timezone

    product = make_product("Monthly", recurring="month")
    now = timezone.now()
    return Subscription.objects.create(
        organization=org, customer=customer, product=product, price=product.prices.get(), status="active",
        currency="usd", amount=2000, billing_anchor=now, current_period_start=now, current_period_end=now,
    )  # fmt: skip


def test_a_subscription_lock_leaves_its_organization_customer_and_product_free(subscription):
    def check():
        for table, pk in (
            ("accounts_organization", subscription.organization_id),
            ("accounts_customer", subscription.customer_id),
            ("catalog_product", subscription.product_id),
        ):
            _nowait(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [pk])

    _while_held(lambda: subscription_lock(subscription.pk), check)


def test_invoice_numbering_leaves_the_organization_row_free(org, make_org):
    other = make_org("Other")

    def check():
        _nowait("SELECT 1 FROM accounts_organization WHERE id = %s FOR UPDATE", [org.pk])
        assert invoice_number_assign(organization=other) == f"{other.invoice_prefix}-00001"

    _while_held(lambda: invoice_number_assign(organization=org), check)
    assert InvoiceCounter.objects.get(organization=org).next_number == 2


def test_an_organization_being_edited_does_not_hold_up_its_orders(org, customer):
    from billing.orders.services import Line, order_create

    def check():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")
        order = order_create(
            organization=org, customer=customer, billing_reason="purchase", currency="usd",
            lines=[Line(label="Thing", amount=1500)], paid=True,
        )  # fmt: skip
        assert order.invoice_number == f"{org.invoice_prefix}-00001"

    _while_held(lambda: lock_one(Organization, org.pk), check)


def test_a_row_changed_while_its_lock_waited_is_still_found_with_its_new_relations(
    subscription, make_product
):
    """PostgreSQL re-checks a row that changed while a lock waited against the rows it had
    joined before: a lock with joins would lose a subscription whose price just changed."""
    other = make_product("Other", recurring="month")
    new_price = other.prices.get()
    release, held = threading.Event(), threading.Event()

    def change_price():
        with transaction.atomic():
            lock_one(Subscription, subscription.pk)
            Subscription.objects.filter(pk=subscription.pk).update(price=new_price, product=other)
            held.set()
            release.wait(timeout=20)

    thread, outcome = _in_thread(change_price)
    assert held.wait(timeout=10)
    threading.Timer(0.5, release.set).start()  # commit while the lock below waits
    with transaction.atomic():
        locked = subscription_lock(subscription.pk)
    thread.join(timeout=30)
    assert "error" not in outcome, outcome
    assert (locked.price_id, locked.product.name) == (new_price.pk, "Other")


def test_a_webhook_event_whose_receiver_lost_a_race_is_processed_not_failed(monkeypatch):
    from django.utils import timezone

    from billing.payments import events, receivers
    from billing.payments.models import ExternalEvent

    runs = []

    def receiver(event):
        runs.append(1)
        if len(runs) == 1:
            raise _deadlock()
        return receivers.Handled.processed("done")

    monkeypatch.setitem(receivers.RECEIVERS, "test.raced", receiver)
    event = ExternalEvent.objects.create(
        event_id="evt_raced", type="test.raced", occurred_at=timezone.now(), payload={}
    )
    events.external_event_process(event_id=event.pk)
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error) == (ExternalEvent.Status.PROCESSED, 1, "")
    assert len(runs) == 2


def _hold_external_id_uncommitted(org, external_id: str, inserted: threading.Event, release: threading.Event):
    """On another connection: insert a customer with ``external_id`` and commit only once told."""
    with transaction.atomic():
        Customer.objects.create(organization=org, email="first@example.com", external_id=external_id)
        inserted.set()
        release.wait(10)


def _release_once_a_backend_waits_on_a_lock(release: threading.Event) -> None:
    with connections["default"].cursor() as cursor:
        for _ in range(1000):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                break
            release.wait(0.01)
    release.set()


def _race_for_external_id(org, external_id: str, attempt):
    """``attempt`` runs while another connection holds an uncommitted customer with
    ``external_id``: its check for a free external_id cannot see that row, its insert waits on
    the unique index, and the other commits only once the insert waits, so it hits the index."""
    inserted, release = threading.Event(), threading.Event()
    holder, held = _in_thread(_hold_external_id_uncommitted, org, external_id, inserted, release)
    assert inserted.wait(10)
    watcher, _ = _in_thread(_release_once_a_backend_waits_on_a_lock, release)
    try:
        return attempt()
    finally:
        release.set()
        for thread in (holder, watcher):
            thread.join(10)
        assert "error" not in held


def test_an_external_id_taken_by_a_concurrent_insert_is_a_field_error_and_the_caller_goes_on(org):
    with transaction.atomic():  # an enclosing caller, as the backoffice's change form is
        with pytest.raises(InvalidInput) as refused:
            _race_for_external_id(
                org,
                "raced",
                lambda: account_services.customer_create(
                    organization=org, email="second@example.com", external_id="raced"
                ),
            )
        assert refused.value.field == "external_id"
        # The failed insert was rolled back to the service's own savepoint: the caller's
        # transaction is still usable.
        assert Customer.objects.filter(organization=org, external_id="raced").count() == 1
    assert list(Customer.objects.filter(organization=org).values_list("email", flat=True)) == [
        "first@example.com"
    ]


def test_an_upsert_that_loses_the_race_for_its_external_id_updates_the_winner(org):
    customer, created = _race_for_external_id(
        org,
        "raced",
        lambda: account_services.customer_upsert(
            organization=org, external_id="raced", email="second@example.com", name="Second"
        ),
    )
    assert created is False
    assert Customer.objects.get(organization=org, external_id="raced") == customer
    assert (customer.email, customer.name) == ("second@example.com", "Second")
