from celery import shared_task

from billing.checkout import services


@shared_task(name="checkout.expire_checkouts", ignore_result=True)
def expire_checkouts() -> dict[str, int]:
    return services.checkouts_expire()
