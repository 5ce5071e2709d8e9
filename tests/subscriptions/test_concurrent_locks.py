"""A subscription action waiting on the row lock of a concurrent plan change must not lose the
row: it answers after the change commits (success or a 409), never ``DoesNotExist`` / 500."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from billing.subscriptions import services
from billing.subscriptions.models import Subscription
from tests.subscriptions.scenario import price_of, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


def hold_plan_change(subscription, new_price, *, committed: threading.Event, locked: threading.Event):
    """Another process changing the plan: moves product and price under the row lock, holds it."""
    try:
        with transaction.atomic():
            Subscription.objects.select_for_update().filter(pk=subscription.pk).update(
                product_id=new_price.product_id, price_id=new_price.pk
            )
            locked.set()
            time.sleep(0.5)
        committed.set()
    finally:
        connection.close()


@pytest.mark.parametrize("action", ["cancel", "uncancel"])
def test_action_waiting_on_a_plan_change_sees_the_changed_row(manual_org, plans, action):
    subscription = subscribe(manual_org, plans["basic"])
    if action == "uncancel":
        services.subscription_cancel(subscription=subscription)
    pro = price_of(plans["pro"])
    locked, committed = threading.Event(), threading.Event()
    changer = threading.Thread(
        target=hold_plan_change, args=(subscription, pro), kwargs={"committed": committed, "locked": locked}
    )
    changer.start()
    assert locked.wait(5)
    calls = {
        "cancel": lambda: services.subscription_cancel(subscription=subscription),
        "uncancel": lambda: services.subscription_uncancel(subscription=subscription),
    }
    try:
        result = calls[action]()
    except Exception as exc:  # a clear refusal is fine; a vanished row is not
        from core.errors import ServiceError

        assert isinstance(exc, ServiceError), repr(exc)
        result = None
    changer.join()
    assert committed.is_set()
    if result is not None:
        assert result.price_id == pro.pk  # it worked on the row as the change left it
    for alias in connections:
        connections[alias].close()
