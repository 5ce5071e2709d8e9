"""Thin tasks over ``benefits.grants``: process grants, fan a product's benefit out to its
holders, and the sweeper that finds what a lost message left pending."""

import time

from celery import shared_task

from benefits import grants
from core.task_base import RecurTask

FANOUT_BUDGET = 5.0  # seconds one fan-out task works before handing over to a fresh one


@shared_task(name="benefits.process_grants", base=RecurTask, ignore_result=True)
def process_grants(grant_ids: list[str]) -> int:
    return sum(1 for pk in grant_ids if grants.grant_process(grant_id=pk))


@shared_task(name="benefits.sync_product_benefit", base=RecurTask, ignore_result=True)
def sync_product_benefit(product_benefit_id: str) -> None:
    started = time.monotonic()
    while grants.product_benefit_sync(product_benefit_id=product_benefit_id):
        if time.monotonic() - started > FANOUT_BUDGET:
            sync_product_benefit.delay(product_benefit_id)
            return


@shared_task(name="benefits.sweep_grants", base=RecurTask, ignore_result=True)
def sweep_grants() -> int:
    """Beat, every minute: grants whose work is due (new, retrying, or lost), and product
    benefits whose holders are not all granted (or revoked) yet."""
    due = grants.grants_due()
    for start in range(0, len(due), grants.PROCESS_BATCH):
        process_grants.delay([str(pk) for pk in due[start : start + grants.PROCESS_BATCH]])
    for pk in grants.product_benefits_unsynced():
        sync_product_benefit.delay(str(pk))
    return len(due)
