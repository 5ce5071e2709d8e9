from billing.payments.models import Payment


def reference_settled_payment(reference: str) -> Payment | None:
    """The attempt that paid for ``reference``, if any; a later attempt's failure does not undo it."""
    return (
        Payment.objects.filter(reference=reference, status=Payment.Status.SUCCEEDED)
        .order_by("attempt")
        .first()
    )
