from celery import shared_task

from billing.payments import events


@shared_task(name="payments.process_external_event", ignore_result=True)
def process_external_event(event_id: int) -> None:
    events.external_event_process(event_id=event_id)


@shared_task(name="payments.sweep_external_events", ignore_result=True)
def sweep_external_events() -> int:
    return events.external_events_sweep()
