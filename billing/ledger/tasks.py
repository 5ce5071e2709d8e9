import logging

from celery import shared_task
from django.db import transaction

from billing.ledger import fees, reconciliation
from billing.ledger.reconciliation import invariants
from billing.payments.models import Payment
from billing.payments.processor import ProcessorError

logger = logging.getLogger("recur.ledger")


@shared_task(name="ledger.reconcile", ignore_result=True)
def reconcile_ledger() -> bool:
    """Beat, daily: check the ledger's invariants and store the result."""
    return reconciliation.reconciliation_run().ok


@shared_task(name="ledger.check_invariants", ignore_result=True)
def check_invariants() -> bool:
    """Beat, every 10 minutes: check the invariants, store the run, drop old passing runs."""
    run = invariants.invariants_run()
    invariants.invariant_runs_purge()
    return run.ok


@shared_task(name="ledger.record_payment_fee", ignore_result=True)
def record_payment_fee(payment_id: str) -> bool:
    """After a Stripe payment succeeded: read and post its processor fee. A processor that
    cannot answer is left to the sweeper (no retry storm from here)."""
    if transaction.get_connection().in_atomic_block:
        # Run eagerly inside someone's transaction (tests capturing on-commit callbacks):
        # never call the processor under it; the sweeper reads the fee a minute later.
        logger.info("processor fee of payment %s left to the sweeper (inside a transaction)", payment_id)
        return False
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None:
        return False
    try:
        fees.payment_fee_record(payment=payment)
    except ProcessorError as exc:
        logger.warning("processor fee of payment %s not read yet: %s", payment_id, exc)
        return False
    return True


@shared_task(name="ledger.sweep_payment_fees", ignore_result=True)
def sweep_payment_fees() -> int:
    """Beat, every minute: fees of succeeded Stripe payments still unknown (lost tasks)."""
    return fees.payment_fees_sweep()
