from celery import shared_task

from billing.webhooks import delivery
from core.task_base import RecurTask


@shared_task(name="webhooks.send", base=RecurTask, ignore_result=True)
def send_deliveries() -> int:
    return delivery.webhook_deliveries_send()


@shared_task(name="webhooks.sweep", base=RecurTask, ignore_result=True)
def sweep_deliveries() -> int:
    return delivery.webhook_deliveries_sweep()
