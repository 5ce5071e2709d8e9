from celery import shared_task

from core import services
from core.api.idempotency import idempotency_purge_expired


@shared_task(name="core.tasks.heartbeat", ignore_result=True)
def heartbeat() -> None:
    from celery import current_task

    services.heartbeat_record(name="heartbeat", hostname=getattr(current_task.request, "hostname", None))


@shared_task(name="core.tasks.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> int:
    return idempotency_purge_expired()
