from celery import shared_task

from billing.refunds import services


@shared_task(name="refunds.sweep_refunds", ignore_result=True)
def sweep_refunds() -> int:
    """Beat, every minute: submit again pending refunds whose processor call never answered."""
    return services.refunds_sweep()
