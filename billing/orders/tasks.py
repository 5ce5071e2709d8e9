from celery import shared_task

from billing.orders import collection
from billing.payments.models import Payment

# The task names predate the orders' own collection module; schedules and queued messages use them.


@shared_task(name="subscriptions.collect_order_payment", ignore_result=True)
def collect_order_payment(order_id: str, trigger: str = Payment.Trigger.CYCLE) -> None:
    collection.order_payment_collect(order_id=order_id, trigger=trigger)


@shared_task(name="subscriptions.collect_due_orders", ignore_result=True)
def collect_due_orders() -> int:
    """Beat, every minute: first attempts of orders whose collection message was lost."""
    return collection.order_collections_sweep()


@shared_task(name="subscriptions.run_dunning", ignore_result=True)
def run_dunning() -> int:
    return collection.dunning_run()
