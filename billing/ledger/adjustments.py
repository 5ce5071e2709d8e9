"""Operators' manual corrections of a merchant's balance (issue 6, point 2): finance or
admin only (``ledger.adjust_balance``), with a reason, audited ``balance.adjust``. The
platform's ``adjustments`` account takes the other side of every correction."""

from uuid import uuid4

from django.db import transaction

from accounts.models import Organization, User
from billing.ledger.models import LedgerTransaction
from billing.ledger.postings import ledger_post_balance_adjustment
from billing.ledger.wallet import ADJUST_PERMISSION, clean_adjustment
from core.audit import audit_record
from core.errors import Forbidden
from core.retry import retry_on_conflict


@retry_on_conflict
def balance_adjust(
    *, organization: Organization, amount: int, currency: str, reason: str, actor
) -> LedgerTransaction:
    """Credit (``amount`` > 0) or debit (< 0) the merchant's balance by hand."""
    if not isinstance(actor, User) or not actor.has_perm(ADJUST_PERMISSION):
        raise Forbidden(
            "Adjusting a merchant's balance needs the ledger.adjust_balance permission (finance or admin).",
            code="permission_denied",
        )
    amount, currency, reason = clean_adjustment(amount=amount, currency=currency, reason=reason)
    with transaction.atomic():
        ledger_tx = ledger_post_balance_adjustment(
            organization=organization,
            amount=amount,
            currency=currency,
            idempotency_key=f"adjustment:{uuid4()}",
            description=f"Balance adjustment: {reason}",
        )
        audit_record(
            actor=actor,
            action="balance.adjust",
            target=organization,
            organization=organization,
            reason=reason,
            data={"amount": amount, "currency": currency, "transaction": str(ledger_tx.pk)},
        )
    return ledger_tx
