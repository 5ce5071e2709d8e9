"""Reads about refunds shared by the API, the backoffice and the invariant checks."""

from django.db.models import F, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from billing.payments.models import Payment
from billing.refunds.models import Refund

LIVE = (Refund.Status.PENDING, Refund.Status.SUCCEEDED)


def payments_refund_mismatch():
    """Payments whose processor-reported refunded amount (``processor_amount_refunded``, the
    charge's cumulative ``amount_refunded``) differs from the card part of their live
    (pending and succeeded) Refund rows, annotated with ``refunds_card_total``. Empty when
    every refund the processor reported is recorded once. A refund Recur created whose
    processor call is still in flight shows here briefly; callers give it a grace period
    (``billing.refunds.settlement.REFUND_SETTLE_AFTER``)."""
    live = (
        Refund.objects.filter(payment=OuterRef("pk"), status__in=LIVE)
        .order_by()
        .values("payment")
        .annotate(total=Sum("card_amount"))
        .values("total")
    )
    return (
        Payment.objects.filter(processor_amount_refunded__isnull=False)
        .annotate(refunds_card_total=Coalesce(Subquery(live), 0))
        .exclude(processor_amount_refunded=F("refunds_card_total"))
    )
