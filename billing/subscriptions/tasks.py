from celery import shared_task

from billing.orders.tasks import collect_due_orders, collect_order_payment, run_dunning
from billing.subscriptions import dunning, renewals, trials

__all__ = ["collect_due_orders", "collect_order_payment", "run_dunning"]  # collection lives in orders


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


@shared_task(name="subscriptions.revoke_benefits", ignore_result=True)
def revoke_benefits() -> int:
    return dunning.benefits_revoke_due()


@shared_task(name="subscriptions.notify_trials_ending", ignore_result=True)
def notify_trials_ending() -> int:
    return trials.subscriptions_trial_will_end_notify()
