from celery import shared_task

from core.events import services
from core.task_base import RecurTask


@shared_task(name="events.dispatch", base=RecurTask, ignore_result=True)
def dispatch_events(event_ids: list[int] | None = None) -> int:
    """Given ids (the sweeper), those events; given none, every undispatched event."""
    return services.events_process(event_ids=event_ids)


@shared_task(name="events.handle", base=RecurTask, ignore_result=True)
def handle_events(handling_ids: list[int]) -> int:
    return sum(services.event_handle(handling_id=h) for h in handling_ids)


@shared_task(name="events.sweep", base=RecurTask, ignore_result=True)
def sweep_events() -> int:
    return services.events_sweep()
