"""Subscriptions in the backoffice timelines (core.backoffice.timeline).

For a customer: each subscription's start (naming the product it started on), trial end,
past due, a scheduled cancellation ("active until …") told apart from an ended subscription.

For a subscription, its whole story: creation, every action on record in the audit log
(changes with from/to and their proration lines, cancel with reason and comment, uncancel,
revoke, pause, resume, trial changes, discount changes, payment retries), the row's own
milestones (trial end, past due, paused, ended), renewals and other orders, payments and
dunning attempts (with the next attempt), and wallet credits. Each line names who acted: the
operator, the API token or the customer as the audit log recorded them, else what the row
says (a renewal is the system's, a cycle payment the renewal job's, a dunning retry the
dunning job's). Refunds and disputes add their lines from their own apps. Every source is one
query, bounded by the timeline's limit.
"""

from datetime import datetime, timedelta

from django.db.models import Q, Sum

from billing.ledger.models import LedgerAccount, LedgerTransaction
from billing.money import format_amount
from billing.orders.models import BillingReason, Order
from billing.payments.models import Payment
from billing.payments.timeline import PAYMENT_TONES, decline_reason, payment_title, payment_when
from billing.subscriptions.models import Subscription
from core.audit import ActorKind
from core.backoffice.timeline import (
    TimelineEvent,
    admin_change_url,
    day,
    minute,
    order_label,
    per_interval,
    signed_amount,
    timelines,
)
from core.models import AuditEntry, actor_words

SUBSCRIPTION = "subscriptions.subscription"
RENEWALS = actor_words(ActorKind.SYSTEM, "renewals")
DUNNING = actor_words(ActorKind.SYSTEM, "dunning")
PROCESSOR = actor_words(ActorKind.SYSTEM, "payment processor")
# An immediate end is written by one service call: its audit entry and ``ended_at`` are
# stamped within this of each other.
SAME_ACTION = timedelta(seconds=5)


def customer_words(customer) -> str:
    return actor_words(ActorKind.CUSTOMER, customer.email)


def _price(terms: dict, currency: str) -> str:
    return per_interval(terms["amount"], currency, terms.get("interval"), terms.get("interval_count") or 1)


def _cancel_words(sub: Subscription) -> tuple[str, str]:
    """The title suffix and detail of a cancellation, told from what the row says now."""
    reason = sub.cancellation_reason.replace("_", " ")
    comment = f"“{sub.cancellation_comment}”" if sub.cancellation_comment else ""
    return reason, comment


# --- a customer's subscriptions ---------------------------------------------------------------


@timelines.source(
    "accounts.customer", kind="subscription", permission="subscriptions.view_subscription", rank=2
)
def customer_subscriptions(customer, limit: int, now: datetime) -> list[TimelineEvent]:
    events = []
    subscriptions = (
        Subscription.objects.filter(customer=customer)
        .select_related("product", "checkout__product")
        .order_by("-created_at")[:limit]
    )
    for sub in subscriptions:
        url = admin_change_url("subscriptions", "subscription", sub.pk)
        product = sub.product
        started_on = sub.checkout.product if sub.checkout_id else product
        price = per_interval(
            sub.amount, sub.currency, product.recurring_interval, product.recurring_interval_count
        )
        detail = price if started_on.pk == product.pk else f"now {product.name}, {price}"
        if sub.trial_end:
            detail += f" · trial until {day(sub.trial_end)}"
        events.append(
            TimelineEvent(
                sub.created_at, "subscription", f"Subscribed to {started_on.name}", detail, url, "info"
            )
        )
        if sub.trial_end is not None and sub.trial_end <= now and sub.status != Subscription.Status.TRIALING:
            events.append(
                TimelineEvent(
                    sub.trial_end, "subscription", f"Trial of {product.name} ended", price, url, "info"
                )
            )
        if sub.past_due_at is not None:
            events.append(
                TimelineEvent(
                    sub.past_due_at,
                    "subscription",
                    f"Subscription to {product.name} past due",
                    price,
                    url,
                    "bad",
                )
            )
        events += _cancellation_events(sub, product.name, url)
    return events


def _cancellation_events(sub: Subscription, product: str, url: str | None) -> list[TimelineEvent]:
    """A cancellation still to come ("active until …") or an end, never confused."""
    reason = " · ".join(part for part in _cancel_words(sub) if part)
    events = []
    immediate = (
        sub.ended_at is not None
        and sub.canceled_at is not None
        and sub.ended_at - sub.canceled_at < SAME_ACTION
    )
    if sub.canceled_at is not None and not immediate:
        ending = (
            f"active until {day(sub.current_period_end)}"
            if sub.ended_at is None
            else f"ended {day(sub.ended_at)}"
        )
        detail = " · ".join(part for part in (ending, reason) if part)
        title = f"Cancellation of {product} scheduled"
        events.append(TimelineEvent(sub.canceled_at, "subscription", title, detail, url, "warn"))
    if sub.ended_at is not None:
        detail = "canceled immediately" if immediate else "at the end of its period"
        if immediate and reason:
            detail += f" · {reason}"
        events.append(
            TimelineEvent(
                sub.ended_at, "subscription", f"Subscription to {product} ended", detail, url, "muted"
            )
        )
    return events


# --- one subscription's whole story ---------------------------------------------------------


def subscription_audit_entries(sub: Subscription, limit: int) -> list[AuditEntry]:
    """The actions on record for the subscription and for its orders (payment retries)."""
    return list(
        AuditEntry.objects.filter(
            Q(object_type=SUBSCRIPTION, object_id=str(sub.pk))
            | Q(action="order.retry_payment", data__subscription_id=str(sub.pk))
        ).order_by("-created_at", "-id")[:limit]
    )


def _change_title(entry: AuditEntry) -> str:
    before, after = entry.data.get("before"), entry.data.get("after")
    if not before or not after:
        return "Plan or seats changed"
    parts = []
    if before["product"] != after["product"]:
        parts.append(f"plan {before['product']} → {after['product']}")
    elif before["price_id"] != after["price_id"]:
        parts.append(f"price of {after['product']} changed")
    if (before.get("interval"), before.get("interval_count")) != (
        after.get("interval"),
        after.get("interval_count"),
    ):
        parts.append(f"interval {before.get('interval')} → {after.get('interval')}")
    if before.get("seats") != after.get("seats"):
        parts.append(f"seats {before.get('seats') or '—'} → {after.get('seats') or '—'}")
    if before.get("discount") != after.get("discount"):
        parts.append(f"discount {before.get('discount') or 'none'} → {after.get('discount') or 'none'}")
    return ("Changed: " + ", ".join(parts)) if parts else "Changed"


_BEHAVIOURS = {
    "invoice": "billed now",
    "prorate": "prorated on the next order",
    "next_period": "from the next period",
    "none": "without proration",
}


def _change_detail(entry: AuditEntry, currency: str, orders: dict) -> str:
    data = entry.data
    before, after = data.get("before"), data.get("after")
    parts = []
    if before and after:
        parts.append(f"{_price(before, currency)} → {_price(after, currency)}")
    behaviour = data.get("proration_behavior", "")
    if behaviour == "next_period" and data.get("effective_at"):
        parts.append(f"from the next period, {data['effective_at'][:10]}")
    elif behaviour:
        parts.append(_BEHAVIOURS.get(behaviour, behaviour))
    lines = data.get("lines") or []
    if lines:
        parts.append(
            "; ".join(f"{line['label']} {signed_amount(line['amount'], currency)}" for line in lines)
        )
    order = orders.get(data.get("order_id"))
    if order is not None:
        parts.append(f"order {order_label(order)}, {format_amount(order.total, order.currency)}")
    return " · ".join(parts)


def _entry_event(entry: AuditEntry, sub: Subscription, orders: dict) -> TimelineEvent | None:
    data, action, actor = entry.data, entry.action, entry.actor_display
    currency = sub.currency
    url = None
    if action == "subscription.change":
        return TimelineEvent(
            entry.created_at,
            "change",
            _change_title(entry),
            _change_detail(entry, currency, orders),
            url,
            "info",
            actor,
        )
    if action == "subscription.cancel":
        reason = (data.get("cancellation_reason") or "").replace("_", " ")
        parts = []
        if data.get("ends_at"):
            parts.append(f"active until {data['ends_at'][:10]}")
        if reason:
            parts.append(f"reason: {reason}")
        if entry.reason:
            parts.append(f"“{entry.reason}”")
        title = "Cancellation scheduled at the period end"
        return TimelineEvent(entry.created_at, "cancel", title, " · ".join(parts), url, "warn", actor)
    if action == "subscription.revoke":
        parts = [f"“{entry.reason}”"] if entry.reason else []
        if data.get("credit"):
            parts.append(f"{format_amount(data['credit'], currency)} credited to the wallet")
        return TimelineEvent(
            entry.created_at, "cancel", "Canceled immediately", " · ".join(parts), url, "bad", actor
        )
    simple = {
        "subscription.uncancel": ("Cancellation withdrawn", "info"),
        "subscription.pause": ("Pause scheduled at the period end", "warn"),
        "subscription.resume": ("Resumed", "good"),
        "subscription.trial_end": ("Trial ended now", "info"),
        "subscription.restore": ("Restored", "good"),
    }
    if action in simple:
        title, tone = simple[action]
        return TimelineEvent(entry.created_at, "subscription", title, entry.reason, url, tone, actor)
    if action == "subscription.trial_extend":
        detail = f"was {data['before'][:10]}" if data.get("before") else ""
        title = f"Trial extended to {str(data.get('trial_end', ''))[:10]}"
        return TimelineEvent(entry.created_at, "trial", title, detail, url, "info", actor)
    if action == "subscription.period_end_correct":
        title = f"Period end corrected: {str(data.get('before'))[:16]} → {str(data.get('after'))[:16]}"
        return TimelineEvent(entry.created_at, "subscription", title, entry.reason, url, "warn", actor)
    if action == "subscription.discount_change":
        code = data.get("discount_code")
        title = f"Discount {code} applied" if code else "Discount removed"
        detail = f"was {data['before']}" if data.get("before") else ""
        return TimelineEvent(entry.created_at, "discount", title, detail, url, "info", actor)
    if action == "order.retry_payment":
        order = orders.get(entry.object_id)
        label = order_label(order) if order is not None else entry.object_repr
        return TimelineEvent(
            entry.created_at,
            "payment",
            f"Payment retry requested for order {label}",
            "",
            admin_change_url("orders", "order", entry.object_id),
            "info",
            actor,
        )
    return TimelineEvent(entry.created_at, "subscription", action, entry.reason, url, "muted", actor)


def _who_ordered(order: Order, sub: Subscription, changes: dict) -> str:
    if order.billing_reason in (
        BillingReason.SUBSCRIPTION_CYCLE,
        BillingReason.SUBSCRIPTION_CYCLE_AFTER_TRIAL,
    ):
        return RENEWALS
    if order.billing_reason == BillingReason.SUBSCRIPTION_UPDATE:
        return changes.get(str(order.pk), "")
    return customer_words(sub.customer)


def _order_event(order: Order, sub: Subscription, changes: dict) -> TimelineEvent:
    url = admin_change_url("orders", "order", order.pk)
    total = format_amount(order.total, order.currency)
    status = order.get_status_display().lower()
    period = (
        f"{day(order.period_start)} → {day(order.period_end)}"
        if order.period_start and order.period_end
        else ""
    )
    reason = order.billing_reason
    if reason == BillingReason.SUBSCRIPTION_CYCLE:
        title = f"Renewed: period {period} billed" if period else "Renewed"
    elif reason == BillingReason.SUBSCRIPTION_CYCLE_AFTER_TRIAL:
        title = f"First period after the trial billed: {period}" if period else "First period after the trial"
    elif reason == BillingReason.SUBSCRIPTION_UPDATE:
        title = "Change invoiced"
    else:
        title = "First order"
    parts = [f"order {order_label(order)}", total, status]
    if order.status == Order.Status.PENDING and order.due != order.total:
        parts.append(f"{format_amount(order.due, order.currency)} due")
    if order.applied_balance > 0:
        parts.append(f"{format_amount(order.applied_balance, order.currency)} from the wallet")
    tone = {"paid": "good", "pending": "warn", "void": "muted"}.get(order.status, "info")
    return TimelineEvent(
        order.created_at, "order", title, " · ".join(parts), url, tone, _who_ordered(order, sub, changes)
    )


def _payment_actor(payment: Payment, sub: Subscription, changes: dict, retries: dict) -> str:
    trigger = payment.trigger
    if trigger == Payment.Trigger.CYCLE:
        return RENEWALS
    if trigger == Payment.Trigger.DUNNING_RETRY:
        return DUNNING
    if trigger in (Payment.Trigger.PURCHASE, Payment.Trigger.CUSTOMER_RETRY):
        return customer_words(sub.customer)
    order_id = payment.reference.removeprefix("order:")
    if trigger == Payment.Trigger.SUBSCRIPTION_CHANGE:
        return changes.get(order_id, "")
    if trigger == Payment.Trigger.OPERATOR_RETRY:
        return retries.get(order_id, actor_words(ActorKind.USER, ""))
    return ""


def _payment_event(payment: Payment, order: Order | None, latest: bool, actor: str) -> TimelineEvent:
    dunning = payment.trigger == Payment.Trigger.DUNNING_RETRY
    kind = "dunning" if dunning else "payment"
    title = payment_title(payment)
    if dunning:
        title = f"Dunning retry {payment.attempt - 1}: {title[0].lower()}{title[1:]}"
    parts = [f"attempt {payment.attempt}"]
    if order is not None:
        parts.append(f"order {order_label(order)}")
    if payment.status == Payment.Status.FAILED:
        parts.append(decline_reason(payment))
        if latest and order is not None and order.status == Order.Status.PENDING:
            if order.next_payment_attempt_at is not None:
                parts.append(f"next attempt {minute(order.next_payment_attempt_at)}")
            else:
                parts.append("no automatic attempt left")
    elif payment.status == Payment.Status.REQUIRES_ACTION:
        parts.append("waiting for the customer to authenticate")
    if payment.amount_refunded:
        parts.append(f"refunded {format_amount(payment.amount_refunded, payment.currency)}")
    return TimelineEvent(
        payment_when(payment),
        kind,
        title,
        " · ".join(parts),
        admin_change_url("payments", "payment", payment.pk),
        PAYMENT_TONES.get(payment.status, "info"),
        actor,
    )


def _wallet_credits(sub: Subscription, order_ids: list, limit: int) -> list[LedgerTransaction]:
    """Credits to the customer's wallet from this subscription (downgrade invoices, a revocation
    credit), each with the amount the wallet received. One query."""
    return list(
        LedgerTransaction.objects.filter(
            Q(order_id__in=order_ids) | Q(idempotency_key=f"subscription:{sub.pk}:revoke_credit"),
            type=LedgerTransaction.Type.WALLET_CREDIT,
        )
        .annotate(
            credited=-Sum(
                "entries__amount", filter=Q(entries__account__kind=LedgerAccount.Kind.CUSTOMER_WALLET)
            )
        )
        .order_by("-created_at")[:limit]
    )


def _start(sub: Subscription) -> TimelineEvent:
    product = sub.product
    started_on = sub.checkout.product if sub.checkout_id else product
    detail = f"via checkout · trial until {day(sub.trial_end)}" if sub.trial_end else "via checkout"
    if not sub.checkout_id:
        detail = detail.replace("via checkout", "").strip(" ·")
    return TimelineEvent(
        sub.created_at,
        "subscription",
        f"Subscribed to {started_on.name}",
        detail,
        None,
        "info",
        customer_words(sub.customer),
    )


def _milestones(sub: Subscription, entries: list[AuditEntry], now: datetime) -> list[TimelineEvent]:
    """What the row says happened without an action on record: the jobs' doing."""
    events = []
    if sub.trial_end is not None and sub.trial_end <= now and sub.status != Subscription.Status.TRIALING:
        events.append(TimelineEvent(sub.trial_end, "trial", "Trial ended", "", None, "info", RENEWALS))
    if sub.past_due_at is not None:
        events.append(
            TimelineEvent(sub.past_due_at, "dunning", "Past due: a payment failed", "", None, "bad", DUNNING)
        )
    if sub.paused_at is not None:
        events.append(
            TimelineEvent(
                sub.paused_at, "subscription", "Paused", "no renewals until resumed", None, "muted", RENEWALS
            )
        )
    if sub.ended_at is not None:
        revoked = any(
            e.action == "subscription.revoke" and abs(e.created_at - sub.ended_at) < SAME_ACTION
            for e in entries
        )
        if not revoked:  # an immediate end is the "Canceled immediately" line
            status = sub.get_status_display().lower()
            if sub.cancel_at_period_end or (sub.canceled_at is not None and sub.canceled_at < sub.ended_at):
                why, who = "the scheduled cancellation took effect", RENEWALS
            else:
                why, who = "no payment after the last dunning attempt", DUNNING
            events.append(
                TimelineEvent(sub.ended_at, "subscription", f"Ended ({status})", why, None, "muted", who)
            )
    return events


def subscription_timeline_events(sub: Subscription, limit: int, now: datetime) -> list[TimelineEvent]:
    """The subscription's own lines (its refunds and disputes come from their apps). Five queries."""
    sub = Subscription.objects.select_related("product", "customer", "checkout__product").get(pk=sub.pk)
    entries = subscription_audit_entries(sub, limit)
    orders = list(Order.objects.filter(subscription=sub).order_by("-created_at")[:limit])
    by_id = {str(order.pk): order for order in orders}
    changes = {e.data.get("order_id"): e.actor_display for e in entries if e.action == "subscription.change"}
    retries: dict[str, str] = {}
    for entry in sorted(
        (e for e in entries if e.action == "order.retry_payment"), key=lambda e: e.created_at
    ):
        retries[entry.object_id] = entry.actor_display

    # Lines are gathered cause first (oldest first within each source) and handed back
    # reversed, so that lines of the same instant read newest first: the payment above the
    # order above the change that made it.
    events = [_start(sub)]
    events += [event for entry in reversed(entries) if (event := _entry_event(entry, sub, by_id)) is not None]
    events += [_order_event(order, sub, changes) for order in reversed(orders)]

    references = [order.reference for order in orders]
    if sub.checkout_id:
        references.append(f"checkout:{sub.checkout_id}")
    payments = list(Payment.objects.filter(reference__in=references).order_by("-created_at")[:limit])
    latest: set = set()
    seen: set = set()
    for payment in payments:  # newest first: the first seen per order is its latest attempt
        if payment.reference not in seen:
            seen.add(payment.reference)
            latest.add(payment.pk)
    for payment in reversed(payments):
        order = by_id.get(payment.reference.removeprefix("order:"))
        actor = _payment_actor(payment, sub, changes, retries)
        events.append(_payment_event(payment, order, payment.pk in latest, actor))

    revoke_actor = next((e.actor_display for e in entries if e.action == "subscription.revoke"), "")
    for credit in reversed(_wallet_credits(sub, list(by_id), limit)):
        # An order's credit is the change's (or the renewal's); the other is the revocation's.
        actor = revoke_actor if credit.order_id is None else changes.get(str(credit.order_id)) or RENEWALS
        events.append(
            TimelineEvent(
                credit.created_at,
                "wallet",
                f"Wallet credited {format_amount(credit.credited or 0, sub.currency)}",
                credit.description,
                admin_change_url("ledger", "ledgertransaction", credit.pk),
                "good",
                actor,
            )
        )
    events += _milestones(sub, entries, now)  # the consequences of the payments above
    return events[::-1]


timelines.source(SUBSCRIPTION, kind="subscription", permission="subscriptions.view_subscription", rank=2)(
    subscription_timeline_events
)


def subscription_timeline(sub: Subscription, *, limit: int = 200, user=None) -> list[TimelineEvent]:
    """The subscription's whole story, newest first (every registered source)."""
    return timelines.build(sub, limit=limit, user=user)
