"""Invariants watched continuously: each broken state is built once, the way a killed worker
or a lost message leaves it (real services, then at most a direct row update), and exactly
that check fails, the run is stored, the dashboard and the run page show it, and
``manage.py ledger_reconcile`` reports it with a non-zero exit. Within its grace period
the same state is not reported, and once the jobs catch up every check holds again."""

import io
import json
from datetime import timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils.html import escape

from accounts.models import Customer, Organization, User
from billing.ledger.models import InvariantRun
from billing.ledger.reconciliation import invariants, reconciliation_run
from billing.ledger.reconciliation.invariants import INVARIANTS, invariants_check, invariants_run
from billing.orders.models import Order
from billing.payments import services as payment_services
from billing.payments.models import Payment
from billing.refunds import services as refund_services
from billing.subscriptions import dunning, renewals
from billing.subscriptions.models import Subscription
from tests.subscriptions.scenario import START, subscribe

pytestmark = pytest.mark.django_db(transaction=True)  # payments refuse to run inside a transaction

ALL = set(INVARIANTS)


def failing(now) -> set[str]:
    """The checks failing at ``now``, after a fresh reconciliation (``ledger_reconciled`` reads it)."""
    with time_machine.travel(now, tick=False):
        reconciliation_run()
        return {result["name"] for result in invariants_check() if not result["ok"]}


def assert_reported(name: str, now, backoffice, example) -> None:
    """``name`` and only it fails at ``now``: in a stored run, on the dashboard and the run's page
    (with a link to the offending row), and in the command's output and exit status."""
    with time_machine.travel(now, tick=False):
        with pytest.raises(CommandError, match=name) as raised:
            call_command("ledger_reconcile", stdout=(out := io.StringIO()))
        assert "ledger discrepancies" not in str(raised.value) or name == "ledger_reconciled"
        lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
        reported = [item for item in lines if "invariant" in item]
        assert [item["invariant"] for item in reported] == [name]
        run = InvariantRun.objects.order_by("-id").first()
        assert not run.ok
        assert [result["name"] for result in run.failing] == [name]
        result = run.failing[0]
        assert result["count"] >= 1 and str(example.pk) in result["examples"]
        assert reported[0]["examples"] == result["examples"]

        backoffice.force_login(User.objects.get(is_superuser=True))  # a session of this (moved) day
        page = backoffice.get(reverse("admin:index"))
        card = {card.key: card for card in page.context["cards"]}["invariants"]
        assert (card.value, card.tone) == ("1 failing", "bad")
        assert card.url == reverse("admin:ledger_invariantrun_change", args=[run.pk])
        (item,) = card.items
        assert item.text.startswith(INVARIANTS[name].title) and item.url.endswith(f"#check-{name}")
        assert escape(INVARIANTS[name].title) in page.content.decode()

        detail = backoffice.get(card.url)
        assert detail.status_code == 200
        html = detail.content.decode()
        assert f"id='check-{name}'" in html
        meta = type(example)._meta
        assert reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[example.pk]) in html


def converged(now) -> None:
    """Running the renewal and dunning jobs again at ``now`` creates nothing new."""
    with time_machine.travel(now, tick=False):
        before = (Order.objects.count(), Payment.objects.count())
        assert renewals.renewals_run().cycled == 0
        assert dunning.dunning_run() == 0
        assert (Order.objects.count(), Payment.objects.count()) == before


@pytest.fixture
def monthly(manual_org, plans):
    subscription = subscribe(manual_org, plans["basic"])
    assert subscription.status == "active"
    return subscription


# --- each invariant fails once ----------------------------------------------------------------


def test_an_order_left_without_an_attempt_is_reported(monthly, backoffice):
    """An owed order whose row lost its schedule (written before orders carried their first
    attempt, or by a bug) would never be charged: the check names it."""
    end = monthly.current_period_end
    with time_machine.travel(end + timedelta(minutes=1), tick=False):
        cycled = renewals.renewals_cycle(
            ids=renewals.renewals_claim(now=end + timedelta(minutes=1)), collect=False
        )
    (order_id,) = cycled.orders
    order = Order.objects.get(pk=order_id)
    assert order.next_payment_attempt_at == end + timedelta(minutes=1)  # due from its row alone
    Order.objects.filter(pk=order_id).update(next_payment_attempt_at=None)
    assert Payment.objects.filter(reference=order.reference).count() == 0

    assert failing(end + timedelta(minutes=5)) == set()  # its first attempt may still be on its way
    later = end + timedelta(minutes=1) + invariants.FIRST_ATTEMPT_GRACE + timedelta(minutes=1)
    assert failing(later) == {"order_due_without_attempt"}
    assert_reported("order_due_without_attempt", later, backoffice, order)

    with time_machine.travel(later, tick=False):
        dunning.order_payment_collect(order_id=order.pk, trigger=Payment.Trigger.OPERATOR_RETRY)
    order.refresh_from_db()
    assert order.status == "paid"
    assert failing(later) == set()
    converged(later)


def test_a_scheduled_attempt_long_overdue_is_reported_and_finished_dunning_is_not(monthly, backoffice):
    """A failed renewal waits for its retry; if the dunning job stops, the retry time passes."""
    Organization.objects.filter(pk=monthly.organization_id).update(dunning_final_action="unpaid")
    Customer.objects.filter(pk=monthly.customer_id).update(default_payment_method_id="")
    end = monthly.current_period_end
    with time_machine.travel(end + timedelta(minutes=1), tick=False):
        renewals.renewals_run()  # no card on file: the attempt fails and dunning schedules the last try
    order = Order.objects.get(billing_reason="subscription_cycle")
    assert order.status == "pending" and order.next_payment_attempt_at is not None
    retry = order.next_payment_attempt_at
    assert failing(retry + timedelta(minutes=30)) == set()  # the hourly job is still in time
    overdue = retry + invariants.SCHEDULED_ATTEMPT_OVERDUE + timedelta(minutes=1)
    assert failing(overdue) == {"order_due_without_attempt"}
    assert_reported("order_due_without_attempt", overdue, backoffice, order)

    with time_machine.travel(overdue, tick=False):
        assert dunning.dunning_run() == 1  # the job is back: the last try fails, dunning gives up
    order.refresh_from_db()
    assert (order.status, order.next_payment_attempt_at) == ("pending", None)
    assert Subscription.objects.get(pk=monthly.pk).status == "unpaid"
    assert failing(overdue) == set()  # left pending on purpose: nothing more is scheduled
    converged(overdue)


def test_a_payment_never_sent_to_the_processor_is_reported(monthly, backoffice):
    """Killed between committing the Payment and calling the processor: pending for good."""
    end = monthly.current_period_end
    with time_machine.travel(end + timedelta(minutes=1), tick=False):
        (order_id,) = renewals.renewals_cycle(
            ids=renewals.renewals_claim(now=end + timedelta(minutes=1)), collect=False
        ).orders
        payment, _ = dunning._payment_for(order_id, Payment.Trigger.CYCLE)  # committed; the worker dies here
    assert payment.status == "pending"

    timeout = invariants.PAYMENT_SETTLE_TIMEOUT[Payment.Status.PENDING]
    assert failing(end + timeout - timedelta(minutes=1)) == set()  # the order has its attempt in flight
    late = end + timedelta(minutes=1) + timeout + timedelta(minutes=1)
    assert failing(late) == {"payment_pending_past_timeout"}
    assert_reported("payment_pending_past_timeout", late, backoffice, payment)

    Payment.objects.filter(pk=payment.pk).update(status="processing")  # the processor never said more
    assert failing(late) == {"payment_pending_past_timeout"}

    # an authentication the customer may still complete has until the checkout would expire
    Payment.objects.filter(pk=payment.pk).update(status="requires_action")
    assert failing(late) == set()
    action_late = end + timedelta(minutes=1) + invariants.PAYMENT_SETTLE_TIMEOUT["requires_action"]
    assert failing(action_late + timedelta(minutes=1)) == {"payment_pending_past_timeout"}

    with time_machine.travel(action_late, tick=False):  # the customer authenticated; Stripe says so
        payment_services.payment_apply_snapshot(payment=payment, status="succeeded", observed_at=action_late)
    assert Order.objects.get(pk=order_id).status == "paid"
    assert failing(action_late + timedelta(minutes=1)) == set()


def test_a_claim_left_by_a_dead_worker_is_reported(monthly, backoffice):
    end = monthly.current_period_end
    claimed_at = end + timedelta(seconds=30)
    with time_machine.travel(claimed_at, tick=False):
        assert renewals.renewals_claim(now=claimed_at) == [monthly.pk]  # ...and the worker dies
    assert failing(claimed_at + renewals.CLAIM_TTL) == set()  # the claim is still the worker's
    stale = claimed_at + renewals.CLAIM_TTL + invariants.CLAIM_GRACE + timedelta(seconds=30)
    assert stale < end + invariants.RENEWAL_GRACE  # not yet an overdue renewal: one check fails
    assert failing(stale) == {"renewal_claim_stale"}
    assert_reported("renewal_claim_stale", stale, backoffice, monthly)

    with time_machine.travel(stale, tick=False):
        assert renewals.renewals_run().cycled == 1  # the next dispatch takes the expired claim
    assert failing(stale) == set()
    converged(stale)


def test_a_period_that_ended_without_a_renewal_is_reported(monthly, backoffice):
    """The dispatcher never ran (beat down, or every worker dead)."""
    end = monthly.current_period_end
    assert failing(end + timedelta(minutes=5)) == set()  # the per-minute dispatch is on its way
    late = end + invariants.RENEWAL_GRACE + timedelta(minutes=1)
    assert failing(late) == {"subscription_renewal_overdue"}
    assert_reported("subscription_renewal_overdue", late, backoffice, monthly)

    with time_machine.travel(late, tick=False):
        assert renewals.renewals_run().cycled == 1
    assert failing(late) == set()
    converged(late)


def test_a_processor_refund_without_refund_rows_is_reported(monthly, backoffice):
    """``charge.refunded`` updates the payment's refunded amount; no Refund row records it."""
    payment = Payment.objects.get(status="succeeded")
    with time_machine.travel(START + timedelta(days=1), tick=False):
        payment_services.payment_apply_snapshot(
            payment=payment, status="succeeded", observed_at=START + timedelta(days=1), amount_refunded=1000
        )
    assert failing(START + timedelta(days=1, minutes=5)) == set()  # its refund event may follow
    late = START + timedelta(days=1) + invariants.REFUND_EVENTS_GRACE + timedelta(minutes=1)
    assert failing(late) == {"payment_refund_mismatch"}
    assert_reported("payment_refund_mismatch", late, backoffice, payment)


def test_refund_rows_the_payment_does_not_count_are_reported(monthly, backoffice):
    order = Order.objects.get(billing_reason="subscription_create")
    with time_machine.travel(START + timedelta(days=1), tick=False):
        refund = refund_services.refund_request(order=order, amount=1000, reason="requested_by_customer")
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.card_amount == 1000
    payment = refund.payment
    payment.refresh_from_db()
    assert payment.amount_refunded == 1000
    late = START + timedelta(days=1) + invariants.REFUND_EVENTS_GRACE + timedelta(minutes=1)
    assert failing(late) == set()  # a refund through Recur agrees on both sides

    Payment.objects.filter(pk=payment.pk).update(amount_refunded=0)  # a lost update
    assert failing(late) == {"payment_refund_mismatch"}
    assert_reported("payment_refund_mismatch", late, backoffice, payment)


def test_an_unreconciled_ledger_is_reported(monthly, backoffice):
    now = START + timedelta(days=2)
    with time_machine.travel(now, tick=False):
        assert invariants_check(names=["ledger_reconciled"])[0]["note"].startswith("never run")
    assert failing(now) == set()
    unposted = Order.objects.create(
        organization=monthly.organization, customer=monthly.customer, status="paid", billing_reason="purchase",
        currency="usd", subtotal=700, net=700, total=700, due=700, platform_fee=50,
    )  # fmt: skip  # paid, never posted (a restored dump, a disabled trigger)
    assert failing(now) == {"ledger_reconciled"}
    with time_machine.travel(now, tick=False):
        with pytest.raises(
            CommandError, match=r"1 ledger discrepancies; 1 invariant\(s\) failing \(ledger_reconciled\)"
        ):
            call_command("ledger_reconcile")
        run = InvariantRun.objects.order_by("-id").first()
        assert [r["name"] for r in run.failing] == ["ledger_reconciled"]
        assert "1 discrepancy" in run.failing[0]["note"]
        backoffice.force_login(User.objects.get(is_superuser=True))
        detail = backoffice.get(reverse("admin:ledger_invariantrun_change", args=[run.pk]))
        reconciliation = run.failing[0]["examples"][0]
        assert (
            reverse("admin:ledger_reconciliationrun_change", args=[reconciliation]) in detail.content.decode()
        )
    Order.objects.filter(pk=unposted.pk).delete()

    # a clean reconciliation that stopped running is no proof any more
    with time_machine.travel(now, tick=False):
        reconciliation_run()
    stale = now + invariants.RECONCILIATION_MAX_AGE + timedelta(minutes=1)
    with time_machine.travel(stale, tick=False):
        (result,) = invariants_check(names=["ledger_reconciled"])
    assert not result["ok"] and "older than a day" in result["note"]


# --- the machinery ------------------------------------------------------------------------------


def test_a_check_that_cannot_run_is_reported_and_the_others_still_run(monthly, monkeypatch):
    def broken(now):
        return Order.objects.filter(no_such_field=1)

    monkeypatch.setitem(
        INVARIANTS,
        "broken",
        invariants.Invariant("broken", title="Broken", model="orders.order", grace=None, find=broken),
    )
    with time_machine.travel(START + timedelta(days=1), tick=False):
        reconciliation_run()
        run = invariants_run()
    assert not run.ok
    (result,) = run.failing
    assert result["name"] == "broken" and "FieldError" in result["error"]
    assert {r["name"] for r in run.results if r["ok"]} == ALL  # every real check still ran


def test_the_job_is_scheduled_every_ten_minutes_and_keeps_failing_runs(monthly):
    from billing.ledger.tasks import check_invariants
    from core.schedules import SCHEDULES

    (schedule,) = [s for s in SCHEDULES if s.task == "ledger.check_invariants"]
    assert schedule.every == timedelta(minutes=10) == invariants.RUN_EVERY
    assert check_invariants.name == "ledger.check_invariants"

    day = START + timedelta(days=1)
    with time_machine.travel(day, tick=False):
        assert check_invariants() is False  # never reconciled yet
        reconciliation_run()
        assert check_invariants() is True
    assert list(InvariantRun.objects.order_by("started_at").values_list("ok", flat=True)) == [False, True]
    first_ok = InvariantRun.objects.get(ok=True)
    assert len(first_ok.results) == len(ALL) and all(r["count"] == 0 for r in first_ok.results)

    later = day + invariants.KEEP_PASSING_RUNS + timedelta(days=1)
    with time_machine.travel(later, tick=False):
        renewals.renewals_run()  # a month later: the renewal is due, and the jobs ran
        reconciliation_run()
        assert check_invariants() is True
    # the month-old passing run is gone; the failing one stays; the new one is stored
    assert list(InvariantRun.objects.order_by("started_at").values_list("ok", "started_at")) == [
        (False, day), (True, later),
    ]  # fmt: skip


def test_dashboard_card_never_run_all_hold_and_stale(monthly, backoffice):
    def card():
        backoffice.force_login(User.objects.get(is_superuser=True))
        page = backoffice.get(reverse("admin:index"))
        return {c.key: c for c in page.context["cards"]}["invariants"]

    now = START + timedelta(days=1)
    with time_machine.travel(now, tick=False):
        assert (card().value, card().tone) == ("never run", "warn")
        reconciliation_run()
        run = invariants_run()
        shown = card()
        assert (shown.value, shown.tone, shown.items) == (f"all {len(ALL)} hold", "good", ())
        assert shown.url == reverse("admin:ledger_invariantrun_change", args=[run.pk])
        backoffice.force_login(User.objects.get(is_superuser=True))
        listing = backoffice.get(reverse("admin:ledger_invariantrun_changelist"))
        assert listing.status_code == 200 and listing.context["cl"].result_count == 1
    with time_machine.travel(now + 3 * invariants.RUN_EVERY, tick=False):
        shown = card()
        assert shown.tone == "warn" and "stale" in shown.hint
