from celery import shared_task

from billing.refunds import settlement


@shared_task(name="refunds.sweep_refunds", ignore_result=True)
def sweep_refunds() -> int:
    """Beat, every minute: settle pending refunds from the processor (look up, then resend)."""
    return settlement.refunds_settle_pending()
