"""An order's amounts, computed in one place: from its lines, discount and tax (the order's
own figures), then what the customer's balance pays of it (the wallet decides how much,
``billing.ledger.wallet``; the order derives its due and platform fee from that here)."""

from accounts.models import Organization
from billing.money import percentage_of
from billing.orders.models import Order


def platform_fee_for(*, organization: Organization, amount: int) -> int:
    if amount <= 0:
        return 0
    return min(amount, percentage_of(amount, organization.platform_fee_bps) + organization.platform_fee_fixed)


def order_amounts_set(
    order: Order, *, subtotal: int, discount_amount: int, tax: int, tax_inclusive: bool
) -> None:
    """The order's figures before any balance is applied: net = subtotal - discount; total =
    net + tax (tax already inside net when inclusive); all of it due; the fee on the due."""
    net = subtotal - discount_amount
    order.subtotal, order.discount_amount, order.net = subtotal, discount_amount, net
    order.tax, order.tax_inclusive = tax, tax_inclusive
    order.total = net if tax_inclusive else net + tax
    order_balance_set(order, applied=0)


def order_balance_set(order: Order, *, applied: int, carried: int = 0) -> None:
    """The customer's balance pays ``applied`` of the total (negative: owed money this order
    collects), ``carried`` of it being a part the processor could not charge: the due is what
    is left for the processor, and the platform fee is on that (balance money paid its fee
    when it came in)."""
    order.applied_balance, order.carried_forward = applied, carried
    order.due = max(0, order.total - applied)
    order.platform_fee = platform_fee_for(organization=order.organization, amount=order.due)
