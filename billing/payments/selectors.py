from billing.payments.models import Payment


def reference_settled_payment(reference: str) -> Payment | None:
    """The attempt that paid for ``reference``, if any; a later attempt's failure does not undo it.
    A held payment (another amount or currency than asked) paid for nothing until an operator says."""
    return (
        Payment.objects.filter(reference=reference, status=Payment.Status.SUCCEEDED, hold_reason="")
        .order_by("attempt")
        .first()
    )


def payments_held():
    """Payments whose processor took another amount or currency than asked, waiting for an operator."""
    return Payment.objects.exclude(hold_reason="").filter(hold_released_at__isnull=True)
