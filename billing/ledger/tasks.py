from celery import shared_task

from billing.ledger import reconciliation


@shared_task(name="ledger.reconcile", ignore_result=True)
def reconcile_ledger() -> bool:
    """Beat, daily: check the ledger's invariants and store the result."""
    return reconciliation.reconciliation_run().ok
