from celery import shared_task

from billing.payments.models import Payment
from billing.subscriptions import dunning, renewals, trials


@shared_task(name="subscriptions.dispatch_renewals", ignore_result=True)
def dispatch_renewals() -> int:
    """Beat, every minute: claim due subscriptions in chunks and cycle each chunk in a task."""
    from core import clock

    now = clock.now()
    chunks = 0
    while ids := renewals.renewals_claim(now=now):
        cycle_renewals.delay([str(i) for i in ids])
        chunks += 1
    return chunks


@shared_task(name="subscriptions.cycle_renewals", ignore_result=True)
def cycle_renewals(ids: list[str]) -> None:
    renewals.renewals_cycle(ids=ids)


@shared_task(name="subscriptions.collect_order_payment", ignore_result=True)
def collect_order_payment(order_id: str, trigger: str = Payment.Trigger.CYCLE) -> None:
    dunning.order_payment_collect(order_id=order_id, trigger=trigger)


@shared_task(name="subscriptions.collect_due_orders", ignore_result=True)
def collect_due_orders() -> int:
    """Beat, every minute: first attempts of orders whose collection message was lost."""
    return dunning.order_collections_sweep()


@shared_task(name="subscriptions.run_dunning", ignore_result=True)
def run_dunning() -> int:
    return dunning.dunning_run()


@shared_task(name="subscriptions.revoke_benefits", ignore_result=True)
def revoke_benefits() -> int:
    return dunning.benefits_revoke_due()


@shared_task(name="subscriptions.notify_trials_ending", ignore_result=True)
def notify_trials_ending() -> int:
    return trials.subscriptions_trial_will_end_notify()
