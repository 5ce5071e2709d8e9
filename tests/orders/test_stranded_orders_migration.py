"""The data migration that schedules orders stranded before every owed order carried its
first attempt (a renewal whose collection message was lost)."""

import importlib

import pytest
from django.db import connection

from billing.orders.models import Order
from billing.orders.selectors import orders_due_unscheduled
from billing.orders.services import Line, order_create

migration = importlib.import_module("billing.orders.migrations.0004_schedule_stranded_orders")


@pytest.mark.django_db
def test_stranded_orders_get_their_first_attempt_and_exhausted_dunning_is_left_alone(org, customer):
    def owed(**state) -> Order:
        order = order_create(
            organization=org, customer=customer, billing_reason="purchase", currency="usd",
            lines=[Line(label="Plan", amount=2000)],
        )  # fmt: skip
        Order.objects.filter(pk=order.pk).update(**state)
        return Order.objects.get(pk=order.pk)

    stranded = owed(next_payment_attempt_at=None)
    exhausted = owed(next_payment_attempt_at=None, dunning_deadline=stranded.created_at)
    retrying = owed(next_payment_attempt_at=stranded.created_at.replace(year=2030))
    paid = owed(next_payment_attempt_at=None, status="paid")
    assert list(orders_due_unscheduled()) == [stranded]

    with connection.cursor() as cursor:
        cursor.execute(migration.SCHEDULE_STRANDED)

    assert not orders_due_unscheduled().exists()
    after = {o.pk: o.next_payment_attempt_at for o in Order.objects.all()}
    assert after[stranded.pk] == stranded.created_at
    assert after[exhausted.pk] is None and after[paid.pk] is None
    assert after[retrying.pk] == retrying.next_payment_attempt_at
