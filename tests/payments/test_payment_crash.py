"""A real Celery worker collecting an order is killed (SIGKILL at a named crash point) around
the processor call; the settlement sweeper then settles the order: paid exactly once, one
charge at localstripe, and running the jobs again creates nothing new."""

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import connection

from billing.orders.models import Order
from billing.orders.services import Line, order_create
from billing.payments import services, settlement
from billing.payments.models import Payment
from billing.payments.stripe_processor import StripeProcessor
from billing.subscriptions import dunning
from config.celery import app
from core import clock
from tests.redis_urls import TEST_BROKER_URL, TEST_CACHE_URL

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def worker_env(localstripe, crash_at: str) -> dict:
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": TEST_BROKER_URL,
        "CACHE_URL": TEST_CACHE_URL,
        "STRIPE_API_HOST": localstripe.url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "RECUR_CRASH_AT": crash_at,
    }


def run_worker_until_it_dies(env: dict, log: Path, timeout: float = 90) -> int:
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO",
         "--without-mingle", "--without-gossip", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        pytest.fail("the worker did not reach the crash point:\n" + log.read_text(errors="replace")[-3000:])


@pytest.fixture
def card_order(stripe_client, customer):
    stripe_customer = services.customer_processor_sync(customer=customer, processor=StripeProcessor())
    method = stripe_client.PaymentMethod.create(
        type="card", card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    )
    stripe_client.PaymentMethod.attach(method.id, customer=stripe_customer)
    customer.default_payment_method_id = method.id
    customer.save(update_fields=["default_payment_method_id"])
    return order_create(
        organization=customer.organization,
        customer=customer,
        billing_reason="purchase",
        currency="usd",
        lines=[Line(label="E-book", amount=3100)],
    )


def charges_of(stripe_client, customer) -> list:
    return [
        c
        for c in stripe_client.Charge.list(customer=customer.stripe_customer_id).data
        if c.status == "succeeded"
    ]


@pytest.mark.parametrize("crash_at", ["payment.before_processor_call", "payment.after_processor_call"])
def test_a_worker_killed_around_the_processor_call_leaves_an_order_paid_exactly_once(
    localstripe, stripe_client, customer, card_order, crash_at, tmp_path
):
    eager, app.conf.task_always_eager = app.conf.task_always_eager, False  # to the real broker
    try:
        with app.connection_for_write(TEST_BROKER_URL) as conn:
            conn.default_channel.queue_purge("celery")
            app.send_task(
                "subscriptions.collect_order_payment", args=[str(card_order.pk), "cycle"], connection=conn
            )
    finally:
        app.conf.task_always_eager = eager
    code = run_worker_until_it_dies(worker_env(localstripe, crash_at), tmp_path / "worker.log")
    assert code == -signal.SIGKILL, (tmp_path / "worker.log").read_text(errors="replace")[-3000:]

    payment = Payment.objects.get(reference=card_order.reference)
    assert payment.status == Payment.Status.PENDING and payment.processor_payment_id == ""
    assert payment.submitted_at is not None
    charged_before = len(charges_of(stripe_client, customer))
    assert charged_before == (1 if crash_at == "payment.after_processor_call" else 0)

    # The redelivered task (acks_late) finds the attempt submitted and does not send it again.
    assert dunning.order_payment_collect(order_id=card_order.pk).status == Payment.Status.PENDING
    assert len(charges_of(stripe_client, customer)) == charged_before

    later = clock.now() + settlement.settle_after() + timedelta(seconds=30)
    with time_machine.travel(later, tick=False):
        result = settlement.payments_settle_stale()
    assert (result.checked, result.settled) == (1, 1)
    assert result.resubmitted == (1 if crash_at == "payment.before_processor_call" else 0)

    card_order.refresh_from_db()
    assert card_order.status == Order.Status.PAID
    assert Payment.objects.filter(reference=card_order.reference).count() == 1
    assert len(charges_of(stripe_client, customer)) == 1

    # Convergence: the sweeper, dunning and a redelivered collection create nothing new.
    with time_machine.travel(later + timedelta(hours=2), tick=False):
        assert settlement.payments_settle_stale().checked == 0
        assert dunning.dunning_run() == 0
        assert dunning.order_payment_collect(order_id=card_order.pk) is None
    assert Payment.objects.filter(reference=card_order.reference).count() == 1
    assert len(charges_of(stripe_client, customer)) == 1
