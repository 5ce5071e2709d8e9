from celery import shared_task

from billing.payments import events, settlement


@shared_task(name="payments.process_external_event", ignore_result=True)
def process_external_event(event_id: int) -> None:
    events.external_event_process(event_id=event_id)


@shared_task(name="payments.sweep_external_events", ignore_result=True)
def sweep_external_events() -> int:
    return events.external_events_sweep()


@shared_task(name="payments.settle_stale_payments", ignore_result=True)
def settle_stale_payments() -> int:
    return settlement.payments_settle_stale().checked
