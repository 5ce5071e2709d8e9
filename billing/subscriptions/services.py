"""Subscriptions. Creation from a checkout for now; renewals, changes and dunning build on it."""

import math
from datetime import datetime, timedelta

from django.db import transaction

from billing.catalog.models import Discount
from billing.checkout.models import Checkout
from billing.subscriptions.models import Subscription
from billing.subscriptions.periods import boundary, months_per_period


def discount_periods_for(discount: Discount | None, interval: str, count: int) -> int | None:
    """How many more periods a discount applies to after the first; None means forever."""
    if discount is None or discount.duration == Discount.Duration.FOREVER:
        return None
    if discount.duration == Discount.Duration.ONCE:
        return 0
    periods = math.ceil(discount.duration_in_months / months_per_period(interval, count))
    return max(periods - 1, 0)


@transaction.atomic
def subscription_create_for_checkout(
    *, checkout: Checkout, customer, amount: int, now: datetime
) -> Subscription:
    product = checkout.product
    interval, count = product.recurring_interval, product.recurring_interval_count
    if checkout.trial_days:
        trial_end = now + timedelta(days=checkout.trial_days)
        status, anchor, period_end = Subscription.Status.TRIALING, trial_end, trial_end
    else:
        trial_end = None
        status, anchor = Subscription.Status.ACTIVE, now
        period_end = boundary(anchor, interval, count, 1)
    remaining = discount_periods_for(checkout.discount, interval, count)
    if trial_end is not None and remaining is not None:
        remaining += 1  # the trial's free order does not use up the discount
    return Subscription.objects.create(
        organization=checkout.organization,
        customer=customer,
        product=product,
        price=checkout.price,
        status=status,
        currency=checkout.currency,
        amount=amount,
        seats=checkout.seats,
        billing_anchor=anchor,
        current_period_start=now,
        current_period_end=period_end,
        trial_start=now if trial_end else None,
        trial_end=trial_end,
        discount=checkout.discount,
        discount_periods_remaining=remaining,
        checkout=checkout,
    )
