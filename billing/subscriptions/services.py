"""Subscriptions. Creation from a checkout for now; renewals, changes and dunning build on it."""

import math
from datetime import datetime, timedelta

from django.db import transaction

from accounts.models import ProrationBehavior
from billing.catalog.models import Discount
from billing.checkout.models import Checkout
from billing.ledger.postings import ledger_post_wallet_credit
from billing.ledger.wallet import wallet_apply
from billing.orders.collection import order_payment_retry  # noqa: F401 (its home is orders)
from billing.orders.models import BillingReason, Order, OrderItem
from billing.orders.services import orders_event_record
from billing.payments.models import Payment
from billing.subscriptions.billing import DraftOrder, draft_order, draft_order_saved, draft_order_settle
from billing.subscriptions.changes import CHANGEABLE, ChangePlan, change_plan, check_changeable
from billing.subscriptions.events import subscription_event_record
from billing.subscriptions.locks import subscription_lock
from billing.subscriptions.models import BillingEntry, Subscription
from billing.subscriptions.periods import boundary, months_per_period
from billing.subscriptions.proration import revoke_credit_amounts
from core import clock
from core.audit import audit_record, json_safe
from core.errors import Conflict, InvalidInput
from core.retry import retry_on_conflict


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
    subscription = Subscription.objects.create(
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
    subscription_event_record(type="subscription.created", subscription=subscription)
    if subscription.status == Subscription.Status.ACTIVE:
        subscription_event_record(type="subscription.active", subscription=subscription)
    return subscription


# --- changes, cancellation, pause, trial -----------------------------------------------------

CANCELLATION_REASONS = (
    "too_expensive", "missing_features", "switched_service", "unused", "customer_service",
    "too_complex", "low_quality", "other",
)  # fmt: skip


def _lock(subscription: Subscription) -> Subscription:
    return subscription_lock(subscription.pk)


def _audit(actor, action: str, subscription: Subscription, reason: str = "", **data) -> None:
    """Every action on a subscription is on record with who took it (an operator, an API
    token, the customer; ``None`` is the system): the subscription's timeline reads it."""
    audit_record(
        actor=actor,
        action=action,
        target=subscription,
        organization=subscription.organization,
        reason=reason,
        data=json_safe(data),
    )


def _terms(subscription: Subscription) -> dict:
    """What a change moves from or to, as the audit entry keeps it (names as they were then)."""
    product, price = subscription.product, subscription.price
    return {
        "product": product.name,
        "price_id": str(price.pk),
        "amount": subscription.amount,
        "seats": subscription.seats,
        "interval": product.recurring_interval,
        "interval_count": product.recurring_interval_count,
        "discount": subscription.discount.code or subscription.discount.name
        if subscription.discount_id
        else "",
    }


def _change_lines(plan: ChangePlan) -> list[dict]:
    """The lines a change bills: the invoice's items, or the entries left for the next order."""
    if plan.invoice is not None:
        return [{"label": item.label, "amount": item.amount} for item in plan.invoice.items]
    return [{"label": entry.label, "amount": entry.amount} for entry in plan.entries]


def subscription_change_preview(
    *,
    subscription: Subscription,
    price_id=None,
    seats: int | None = None,
    proration_behavior: str | None = None,
    replace_scheduled_change: bool = False,
) -> ChangePlan:
    """What ``subscription_change`` would do now, computed the same way; writes nothing."""
    return change_plan(
        subscription=subscription,
        at=clock.now(),
        price_id=price_id,
        seats=seats,
        behavior=proration_behavior,
        replace_scheduled_change=replace_scheduled_change,
    )


@retry_on_conflict
def subscription_change(
    *,
    subscription: Subscription,
    price_id=None,
    seats: int | None = None,
    proration_behavior: str | None = None,
    replace_scheduled_change: bool = False,
    actor=None,
) -> tuple[Subscription, Order | None]:
    """Change price and/or seats. ``invoice`` (and a change of interval) bills now, the
    payment after commit. A scheduled change is kept unless this change supersedes it."""
    with transaction.atomic():
        subscription = _lock(subscription)
        plan = change_plan(
            subscription=subscription,
            at=clock.now(),
            price_id=price_id,
            seats=seats,
            behavior=proration_behavior,
            replace_scheduled_change=replace_scheduled_change,
        )
        order = None
        before = _terms(subscription)
        subscription.scheduled_change = plan.scheduled_change
        if plan.behavior != ProrationBehavior.NEXT_PERIOD:
            subscription.price, subscription.product = plan.price, plan.price.product
            subscription.seats, subscription.amount = plan.seats, plan.amount
            if plan.interval_change:
                subscription.billing_anchor = subscription.current_period_start = plan.at
                subscription.current_period_end = plan.period_end
                if not plan.discount_applies:
                    subscription.discount = None
                subscription.discount_periods_remaining = plan.discount_periods_remaining
            if plan.invoice is not None:
                order = _save_invoice(plan.invoice)
            else:
                BillingEntry.objects.bulk_create(plan.entries)
        subscription.save()
        subscription_event_record(type="subscription.updated", subscription=subscription)
        _audit(
            actor,
            "subscription.change",
            subscription,
            price_id=str(plan.price.pk),
            seats=plan.seats,
            proration_behavior=plan.behavior,
            scheduled_change=plan.scheduled_change,
            currency=subscription.currency,
            before=before,
            after={
                **_terms(subscription),
                "product": plan.price.product.name,
                "price_id": str(plan.price.pk),
                "amount": plan.amount,
                "seats": plan.seats,
                "interval": plan.price.product.recurring_interval,
                "interval_count": plan.price.product.recurring_interval_count,
            },
            lines=[] if plan.behavior == ProrationBehavior.NEXT_PERIOD else _change_lines(plan),
            order_id=str(order.pk) if order is not None else None,
            effective_at=plan.effective_at,
        )
    if order is not None and order.status == Order.Status.PENDING:
        _collect_after_commit(order, trigger=Payment.Trigger.SUBSCRIPTION_CHANGE)
    return subscription, order


def _save_invoice(draft: DraftOrder) -> Order:
    """Write an order billed now (a change invoice, a resume): the customer's wallet pays
    what it can; an order left with nothing due (or a due below the minimum charge, carried)
    is paid at once; a credit beyond the charges goes to the wallet. Entries already pending
    are consumed by it. All in the caller's transaction."""
    order = draft.order
    wallet_apply(order=order)
    draft_order_settle(draft, clock.now())
    order.save()
    OrderItem.objects.bulk_create(draft.items)
    new = [entry for entry in draft.entries if entry._state.adding]
    for entry in new:
        entry.order = order
    BillingEntry.objects.bulk_create(new)
    BillingEntry.objects.filter(pk__in=[e.pk for e in draft.entries if e not in new]).update(order=order)
    orders_event_record(type="order.created", orders=[order])
    draft_order_saved(draft)
    return order


def _collect_after_commit(order: Order, *, trigger: str = Payment.Trigger.CYCLE) -> None:
    from billing.subscriptions.tasks import collect_order_payment

    # The order was written with its first attempt due: if this message is lost, the
    # collection sweep charges it.
    transaction.on_commit(lambda: collect_order_payment.delay(str(order.pk), trigger), robust=True)


@retry_on_conflict
@transaction.atomic
def subscription_cancel(
    *, subscription: Subscription, reason: str = "", comment: str = "", actor=None
) -> Subscription:
    """Cancel at the end of the current period; the customer keeps what they paid for until then."""
    subscription = _lock(subscription)
    check_changeable(subscription)
    if reason and reason not in CANCELLATION_REASONS:
        raise InvalidInput(
            f"Use one of {', '.join(CANCELLATION_REASONS)}.", field="reason", code="invalid_choice"
        )
    if subscription.cancel_at_period_end:
        raise Conflict("The subscription is already set to cancel.", code="already_canceling")
    subscription.cancel_at_period_end = True
    subscription.canceled_at = clock.now()
    subscription.cancellation_reason, subscription.cancellation_comment = reason, comment
    subscription.save()
    subscription_event_record(type="subscription.canceled", subscription=subscription)
    _audit(
        actor,
        "subscription.cancel",
        subscription,
        reason=comment,
        cancellation_reason=reason,
        ends_at=subscription.current_period_end,
    )
    return subscription


@retry_on_conflict
@transaction.atomic
def subscription_uncancel(*, subscription: Subscription, actor=None) -> Subscription:
    subscription = _lock(subscription)
    if not subscription.cancel_at_period_end or subscription.status not in CHANGEABLE:
        raise Conflict("The subscription is not set to cancel.", code="not_canceling")
    subscription.cancel_at_period_end = False
    subscription.canceled_at = None
    subscription.cancellation_reason = subscription.cancellation_comment = ""
    subscription.save()
    subscription_event_record(type="subscription.uncanceled", subscription=subscription)
    _audit(actor, "subscription.uncancel", subscription)
    return subscription


def revoke_credit(subscription: Subscription, at: datetime) -> tuple[int, int]:
    """What revoking at ``at`` with ``credit`` gives back to the customer's wallet, as
    (amount, tax inside it): the unused part of what was paid for the current period, after
    its discount and less refunds, to the second (``proration``: the rule changes credit by
    too). Nothing for a trial, an unpaid period or an ended subscription."""
    return revoke_credit_amounts(subscription, at)


def subscription_revoke_preview(*, subscription: Subscription) -> tuple[int, int]:
    """What ``subscription_revoke(credit=True)`` would credit now: (amount, tax). Writes nothing."""
    return revoke_credit(subscription, clock.now())


@retry_on_conflict
@transaction.atomic
def subscription_revoke(
    *, subscription: Subscription, reason: str = "", credit: bool = False, actor=None
) -> Subscription:
    """End now: benefits go at once, unpaid orders are voided and dunning stops. With
    ``credit``, the unused part of the paid current period goes to the customer's wallet
    (``revoke_credit``)."""
    subscription = _lock(subscription)
    if subscription.status in (Subscription.Status.CANCELED,):
        raise Conflict("The subscription has already ended.", code="subscription_ended")
    now = clock.now()
    credited, credited_tax = revoke_credit(subscription, now) if credit else (0, 0)
    if credited > 0:
        ledger_post_wallet_credit(
            customer=subscription.customer,
            amount=credited,
            currency=subscription.currency,
            tax_amount=credited_tax,
            idempotency_key=f"subscription:{subscription.pk}:revoke_credit",
            description=f"Unused time of {subscription.product.name} credited on revocation",
        )
    subscription.status = Subscription.Status.CANCELED
    subscription.canceled_at = subscription.canceled_at or now
    subscription.ended_at = now
    subscription.cancel_at_period_end = False
    subscription.benefits_revoke_at = None  # revoked now, not after a grace period
    subscription.cancellation_comment = reason or subscription.cancellation_comment
    subscription.save()
    subscription_event_record(type="subscription.canceled", subscription=subscription)
    subscription_event_record(type="subscription.revoked", subscription=subscription)
    voided = list(Order.objects.filter(subscription=subscription, status=Order.Status.PENDING))
    Order.objects.filter(pk__in=[o.pk for o in voided]).update(
        status=Order.Status.VOID, next_payment_attempt_at=None, updated_at=now
    )
    for order in voided:
        order.status, order.next_payment_attempt_at = Order.Status.VOID, None
    orders_event_record(type="order.updated", orders=voided)
    _audit(
        actor, "subscription.revoke", subscription, reason=reason, credit=credited, credit_tax=credited_tax
    )
    return subscription


RESTORABLE_STATUSES = (Subscription.Status.ACTIVE, Subscription.Status.TRIALING)


@retry_on_conflict
@transaction.atomic
def subscription_restore(
    *, subscription: Subscription, status: str, reason: str = "", actor=None
) -> Subscription:
    """Undo a revocation that turned out unfounded (a dispute since won): the subscription
    continues in ``status`` as if it had not ended, until the end of the period already paid
    for, and renews from there. Refused once that period is over (restoring then would bill a
    period the customer never had) and for any status but active or trialing."""
    subscription = _lock(subscription)
    if subscription.status != Subscription.Status.CANCELED or subscription.ended_at is None:
        raise Conflict("Only an ended subscription can be restored.", code="subscription_not_ended")
    if status not in RESTORABLE_STATUSES:
        raise InvalidInput(f"Cannot restore a subscription to {status!r}.", field="status")
    if subscription.current_period_end <= clock.now():
        raise Conflict("The period it was paid for is over.", code="subscription_period_over")
    subscription.status = status
    subscription.canceled_at = None
    subscription.ended_at = None
    subscription.benefits_revoke_at = None
    subscription.cancellation_comment = ""
    subscription.save()
    restored = "subscription.active" if status == Subscription.Status.ACTIVE else "subscription.updated"
    subscription_event_record(type=restored, subscription=subscription)
    _audit(actor, "subscription.restore", subscription, reason=reason)
    return subscription


@retry_on_conflict
@transaction.atomic
def subscription_pause(*, subscription: Subscription, actor=None) -> Subscription:
    """Pause at the end of the period: no renewals until resumed."""
    subscription = _lock(subscription)
    check_changeable(subscription)
    if subscription.pause_at_period_end:
        raise Conflict("The subscription is already set to pause.", code="already_pausing")
    subscription.pause_at_period_end = True
    subscription.save()
    subscription_event_record(type="subscription.updated", subscription=subscription)
    _audit(actor, "subscription.pause", subscription)
    return subscription


@retry_on_conflict
def subscription_resume(*, subscription: Subscription, actor=None) -> tuple[Subscription, Order | None]:
    """Undo a scheduled pause, or restart a paused subscription with a new period from now."""
    order = None
    with transaction.atomic():
        subscription = _lock(subscription)
        if subscription.pause_at_period_end:
            subscription.pause_at_period_end = False
            subscription.save()
            subscription_event_record(type="subscription.updated", subscription=subscription)
        elif subscription.status == Subscription.Status.PAUSED:
            now = clock.now()
            product = subscription.product
            subscription.status = Subscription.Status.ACTIVE
            subscription.paused_at = None
            subscription.billing_anchor = now
            subscription.current_period_start = now
            subscription.current_period_end = boundary(
                now, product.recurring_interval, product.recurring_interval_count, 1
            )
            subscription.save()
            entries = list(BillingEntry.objects.filter(subscription=subscription, order__isnull=True))
            cycle = BillingEntry(
                organization_id=subscription.organization_id,
                subscription=subscription,
                kind=BillingEntry.Kind.CYCLE,
                label=f"{product.name} (resumed)",
                amount=subscription.amount,
                currency=subscription.currency,
                period_start=now,
                period_end=subscription.current_period_end,
            )
            draft = draft_order(
                subscription=subscription,
                entries=[cycle, *entries],
                billing_reason=BillingReason.SUBSCRIPTION_CYCLE,
                period_start=now,
                period_end=subscription.current_period_end,
                apply_discount=subscription.discount is not None
                and subscription.discount_periods_remaining != 0,
            )
            new_entries = [e for e in draft.entries if e._state.adding]
            order = _save_invoice(
                DraftOrder(
                    order=draft.order,
                    items=draft.items,
                    entries=new_entries,
                    wallet_credit=draft.wallet_credit,
                    wallet_credit_tax=draft.wallet_credit_tax,
                )
            )
            BillingEntry.objects.filter(pk__in=[e.pk for e in entries]).update(order=order)
            subscription_event_record(type="subscription.resumed", subscription=subscription)
        else:
            raise Conflict("The subscription is not paused.", code="not_paused")
        _audit(actor, "subscription.resume", subscription)
    if order is not None and order.status == Order.Status.PENDING:
        _collect_after_commit(order)
    return subscription, order


@retry_on_conflict
@transaction.atomic
def subscription_trial_extend(*, subscription: Subscription, trial_end: datetime, actor=None) -> Subscription:
    subscription = _lock(subscription)
    if subscription.status != Subscription.Status.TRIALING:
        raise Conflict("Only a trialing subscription has a trial to extend.", code="not_trialing")
    if trial_end <= subscription.trial_end:
        raise InvalidInput(
            "The new trial end must be after the current one.", field="trial_end", code="not_later"
        )
    before = subscription.trial_end
    subscription.trial_end = subscription.current_period_end = subscription.billing_anchor = trial_end
    subscription.save()
    subscription_event_record(type="subscription.updated", subscription=subscription)
    _audit(actor, "subscription.trial_extend", subscription, trial_end=trial_end, before=before)
    return subscription


def subscription_trial_end_now(*, subscription: Subscription, actor=None) -> Subscription:
    """End the trial now: the subscription converts (and is charged) at once."""
    from billing.subscriptions.renewals import renewals_cycle

    with transaction.atomic():
        subscription = _lock(subscription)
        if subscription.status != Subscription.Status.TRIALING:
            raise Conflict("Only a trialing subscription has a trial to end.", code="not_trialing")
        now = clock.now()
        subscription.trial_end = subscription.current_period_end = subscription.billing_anchor = now
        subscription.save()
        subscription_event_record(type="subscription.updated", subscription=subscription)
        _audit(actor, "subscription.trial_end", subscription)
    renewals_cycle(ids=[subscription.pk], now=now)
    subscription.refresh_from_db()
    return subscription


@retry_on_conflict
@transaction.atomic
def subscription_period_end_correct(
    *, subscription: Subscription, period_end: datetime, actor, reason: str
) -> Subscription:
    """Support's correction of the current period's end (audited); never into the past."""
    if not reason.strip():
        raise InvalidInput("Say why the period end is corrected.", field="reason", code="required")
    subscription = _lock(subscription)
    check_changeable(subscription)
    if period_end <= clock.now() or period_end <= subscription.current_period_start:
        raise InvalidInput("The period end must be in the future.", field="period_end", code="in_the_past")
    before = subscription.current_period_end
    subscription.current_period_end = period_end
    subscription.save()
    subscription_event_record(type="subscription.updated", subscription=subscription)
    _audit(
        actor, "subscription.period_end_correct", subscription, reason=reason, before=before, after=period_end
    )
    return subscription


@retry_on_conflict
def subscription_discount_change(
    *, subscription: Subscription, discount_code: str | None, actor=None
) -> Subscription:
    """Apply a discount code to a subscription, or remove its discount (empty code). As in
    Stripe Billing, a discount change applies from the next order on: the period already
    billed is not re-priced. A ``once`` discount then covers the next order."""
    from billing.catalog import services as catalog

    with transaction.atomic():
        subscription = _lock(subscription)
        check_changeable(subscription)
        before = _terms(subscription)["discount"]
        if not discount_code:
            if subscription.discount_id is None:
                raise InvalidInput(
                    "The subscription has no discount to remove.", field="discount_code", code="no_change"
                )
            subscription.discount = None
            subscription.discount_periods_remaining = None
        else:
            discount = (
                Discount.objects.filter(
                    organization_id=subscription.organization_id, code__iexact=discount_code
                )
                .order_by("-created_at")
                .first()
            )
            if discount is None:
                raise InvalidInput(
                    "No discount with this code.", field="discount_code", code="discount_not_found"
                )
            if discount.pk == subscription.discount_id:
                raise InvalidInput(
                    "The subscription already has this discount.", field="discount_code", code="no_change"
                )
            catalog.discount_redeem_for_subscription(
                discount=discount,
                customer=subscription.customer,
                product=subscription.product,
                currency=subscription.currency,
            )
            product = subscription.product
            remaining = discount_periods_for(
                discount, product.recurring_interval, product.recurring_interval_count
            )
            subscription.discount = discount
            subscription.discount_periods_remaining = None if remaining is None else remaining + 1
        subscription.save()
        subscription_event_record(type="subscription.updated", subscription=subscription)
        _audit(
            actor,
            "subscription.discount_change",
            subscription,
            discount_code=discount_code or "",
            before=before,
        )
    return subscription
