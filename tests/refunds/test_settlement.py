"""Pending refunds settle from the processor without webhooks: retrieved by id, found by
their metadata when the answer was lost, sent again only when the processor provably lacks
them; a worker killed right after the processor made the refund leaves no double refund."""

import os
import signal
import subprocess
from datetime import timedelta

import pytest
import time_machine
from django.db import connection

from billing.ledger.models import LedgerTransaction
from billing.refunds import services, settlement
from billing.refunds.models import Refund
from core import clock
from tests.redis_urls import TEST_BROKER_URL
from tests.refunds.helpers import buy, card, settled_payment
from tests.test_jobs import _spawn

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]

LATER = timedelta(minutes=3)


@pytest.fixture
def paid(org, make_product, stripe_client):
    return buy(org, make_product("E-book"), card(stripe_client))  # 2000 + 400 VAT


def processor_refunds(stripe_client, payment) -> list:
    return list(stripe_client.Refund.list(payment_intent=payment.processor_payment_id).data)


def settle_later() -> int:
    with time_machine.travel(clock.now() + LATER):
        return settlement.refunds_settle_pending()


def test_a_refund_whose_answer_was_lost_is_found_by_its_metadata(paid, stripe_client):
    payment = settled_payment(paid)
    refund = services.refund_create(order=paid, amount=1000, reason="other")
    # The call reached the processor, and its answer never came back.
    made = stripe_client.Refund.create(
        payment_intent=payment.processor_payment_id, amount=1000, metadata={"recur_refund_id": str(refund.pk)}
    )
    assert settlement.refunds_settle_pending() == 0  # too recent
    assert settle_later() == 1
    refund.refresh_from_db()
    assert (refund.status, refund.processor_refund_id) == ("succeeded", made.id)
    assert len(processor_refunds(stripe_client, payment)) == 1  # not sent a second time
    assert LedgerTransaction.objects.filter(refund=refund).count() == 1
    assert settle_later() == 0  # converged


def test_a_refund_the_processor_never_got_is_sent_once(paid, stripe_client):
    payment = settled_payment(paid)
    refund = services.refund_create(order=paid, amount=1000, reason="other")
    assert settle_later() == 1
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.processor_refund_id.startswith("re_")
    assert [r.id for r in processor_refunds(stripe_client, payment)] == [refund.processor_refund_id]
    assert settle_later() == 0


def test_a_pending_refund_with_an_id_is_retrieved(paid, stripe_client):
    payment = settled_payment(paid)
    refund = services.refund_create(order=paid, amount=700, reason="other")
    made = stripe_client.Refund.create(
        payment_intent=payment.processor_payment_id, amount=700, metadata={"recur_refund_id": str(refund.pk)}
    )
    services.refund_apply_outcome(
        refund=refund, status="pending", processor_refund_id=made.id, observed_at=clock.now()
    )
    assert settle_later() == 1
    refund.refresh_from_db()
    assert (refund.status, refund.processor_refund_id) == ("succeeded", made.id)
    assert len(processor_refunds(stripe_client, payment)) == 1


def test_an_unreachable_processor_leaves_it_for_the_next_sweep(paid, settings, localstripe, stripe_client):
    refund = services.refund_create(order=paid, amount=500, reason="other")
    settings.STRIPE_API_HOST = "http://127.0.0.1:9"
    assert settle_later() == 1
    refund.refresh_from_db()
    assert refund.status == "pending"
    settings.STRIPE_API_HOST = localstripe.url
    with time_machine.travel(clock.now() + 2 * LATER):
        assert settlement.refunds_settle_pending() == 1
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert len(processor_refunds(stripe_client, settled_payment(paid))) == 1


def test_a_worker_killed_after_the_processor_refunded_leaves_one_refund(
    paid, stripe_client, localstripe, tmp_path
):
    """A real worker runs the sweep and is SIGKILLed right after the processor made the refund,
    before Recur learnt its id; the next sweep finds it by metadata instead of refunding again."""
    payment = settled_payment(paid)
    refund = services.refund_create(order=paid, amount=1200, reason="other")
    # Old enough for the sweep, as if created minutes ago (the worker does not share our clock).
    Refund.objects.filter(pk=refund.pk).update(created_at=clock.now() - LATER)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": TEST_BROKER_URL,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "STRIPE_API_HOST": localstripe.url,
        "RECUR_CRASH_AT": "refunds.after_processor_call",
    }
    from billing.refunds.tasks import sweep_refunds
    from config.celery import app

    app.conf.task_always_eager = False
    try:
        sweep_refunds.delay()
    finally:
        app.conf.task_always_eager = True
    worker = _spawn(
        ["worker", "--pool", "solo", "--loglevel", "INFO", "--without-mingle", "--without-gossip"],
        env,
        tmp_path / "worker.log",
    )
    try:
        worker.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        pytest.fail((tmp_path / "worker.log").read_text(errors="replace")[-3000:])
    finally:
        app.control.purge()  # the killed task's message went back to the queue (acks_late)
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert worker.returncode == -signal.SIGKILL, log[-3000:]

    # The processor made the refund; Recur still has it pending without an id.
    made = processor_refunds(stripe_client, payment)
    assert [r.amount for r in made] == [1200], log[-3000:]
    refund.refresh_from_db()
    assert (refund.status, refund.processor_refund_id) == ("pending", "")

    assert settle_later() == 1
    refund.refresh_from_db()
    assert (refund.status, refund.processor_refund_id) == ("succeeded", made[0].id)
    assert len(processor_refunds(stripe_client, payment)) == 1
    assert LedgerTransaction.objects.filter(refund=refund).count() == 1
    assert settle_later() == 0
