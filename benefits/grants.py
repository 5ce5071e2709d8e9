"""The grant engine: decide what each scope should hold, then let the strategies do it.

``grants_reconcile`` compares what a subscription or a one-time order should hold (its
product's benefits, if it holds at all: ``benefits.selectors``) with its grants, and marks
the difference as wanted (granted or revoked). ``grant_process`` does one grant's pending
work through its strategy and records the outcome and its event. Every path that wants
something sets ``next_attempt_at``, so ``grants_sweep`` finds work a lost message left.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q

from benefits import selectors
from benefits.models import BenefitGrant, ProductBenefit
from benefits.strategies import BenefitError, BenefitRetryableError, strategy_for
from billing.orders.models import Order
from billing.subscriptions.models import Subscription
from core import clock
from core.events.services import event_record
from core.faults import crash_point
from core.locks import lock_all, lock_one

logger = logging.getLogger("recur.benefits")

G = BenefitGrant.Status
W = BenefitGrant.Wanted
MAX_ATTEMPTS = 10
MAX_BACKOFF = timedelta(hours=6)
CLAIM = timedelta(minutes=5)  # an outside call's budget; a crashed worker's claim expires
PROCESS_BATCH = 100  # grants one task processes
FANOUT_BATCH = 500  # holders one fan-out transaction grants
ACTIONS_PER_CALL = 4  # e.g. revoke then grant again, without another task


# --- What each scope should hold --------------------------------------------------------


def _enqueue(grant_ids: list) -> None:
    if grant_ids:
        from benefits.tasks import process_grants  # tasks import this module

        ids = [str(pk) for pk in grant_ids]
        for start in range(0, len(ids), PROCESS_BATCH):
            chunk = ids[start : start + PROCESS_BATCH]
            transaction.on_commit(lambda chunk=chunk: process_grants.delay(chunk), robust=True)


def grants_reconcile(
    *,
    subscription: Subscription | None = None,
    order: Order | None = None,
    reason: str | None = None,
    holds: bool | None = None,
    benefit_ids: list | None = None,
) -> list:
    """Make one scope's grants match what it should hold. Returns the ids of grants that now
    have work. Idempotent: a second call with nothing changed marks nothing. ``holds`` and
    ``benefit_ids`` (the product's live benefits) may come from the caller's batched reads;
    ``reason`` (why grants are revoked) defaults to what the scope's state says."""
    if subscription is not None:
        scope_holds = selectors.subscription_holds(subscription) if holds is None else holds
        product_id, customer_id, organization_id = (
            subscription.product_id,
            subscription.customer_id,
            subscription.organization_id,
        )
        scope = {"subscription": subscription}
    else:
        scope_holds = selectors.order_holds(order) if holds is None else holds
        product_id, customer_id, organization_id = order.product_id, order.customer_id, order.organization_id
        scope = {"order": order, "subscription": None}
    wanted = set()
    if scope_holds and product_id:
        wanted = set(selectors.product_benefit_ids(product_id) if benefit_ids is None else benefit_ids)

    def why() -> str:  # read only when something is revoked
        if reason:
            return reason
        if scope_holds:
            return "benefit removed from the product"
        if subscription is not None:
            return selectors.subscription_revoke_reason(subscription)
        return selectors.order_revoke_reason(order)

    return _reconcile_scope(
        scope=scope, wanted=wanted, organization_id=organization_id, customer_id=customer_id, reason=why
    )


def _reconcile_scope(*, scope: dict, wanted: set, organization_id, customer_id, reason) -> list:
    now = clock.now()
    if wanted:
        BenefitGrant.objects.bulk_create(
            [
                BenefitGrant(
                    organization_id=organization_id,
                    customer_id=customer_id,
                    benefit_id=b,
                    next_attempt_at=now,
                    **scope,
                )
                for b in wanted
            ],
            ignore_conflicts=True,
        )
    changed = []
    for grant in lock_all(BenefitGrant.objects.filter(**scope).order_by("pk")):
        granted = grant.benefit_id in wanted
        if _want(grant, granted=granted, reason="" if granted else reason, now=now):
            changed.append(grant.pk)
        elif grant.next_attempt_at is not None and grant.attempts == 0:
            changed.append(grant.pk)  # created just now (or still pending): process it
    _enqueue(changed)
    return changed


def _want(grant: BenefitGrant, *, granted: bool, reason, now) -> bool:
    """Set what the grant should be; True when that changed (and the work is now pending).
    ``reason`` may be a callable, read only when the grant is revoked."""
    target = W.GRANTED if granted and not grant.revoked_by_operator else W.REVOKED
    if grant.wanted == target:
        return False
    reason = reason() if callable(reason) else reason
    grant.wanted = target
    grant.revoke_reason = "" if granted else reason[:200]
    grant.next_attempt_at, grant.attempts, grant.error, grant.errored_at = now, 0, "", None
    grant.save(
        update_fields=[
            "wanted",
            "revoke_reason",
            "next_attempt_at",
            "attempts",
            "error",
            "errored_at",
            "updated_at",
        ]
    )
    return True


def grant_want(*, grant: BenefitGrant, granted: bool, reason: str) -> bool:
    """One grant (locked by the caller) should be granted or revoked; its work is queued."""
    changed = _want(grant, granted=granted, reason=reason, now=clock.now())
    if changed:
        _enqueue([grant.pk])
    return changed


def grant_retry_now(*, grant: BenefitGrant) -> None:
    """Its pending work is due now, with a fresh run of attempts (an operator's retry)."""
    grant.attempts, grant.next_attempt_at, grant.claimed_until = 0, clock.now(), None
    grant.save(update_fields=["attempts", "next_attempt_at", "claimed_until", "updated_at"])
    _enqueue([grant.pk])


def grants_request_cycle(*, subscription: Subscription) -> list:
    """A new period began: the subscription's granted grants renew (credits, expiry)."""
    return grants_request_cycle_many(subscription_ids=[subscription.pk])


def grants_request_cycle_many(*, subscription_ids) -> list:
    """``grants_request_cycle`` for many renewed subscriptions in two statements."""
    now = clock.now()
    ids = list(
        BenefitGrant.objects.filter(subscription_id__in=list(subscription_ids), wanted=W.GRANTED).values_list(
            "pk", flat=True
        )
    )
    if ids:
        BenefitGrant.objects.filter(pk__in=ids).update(
            cycle_requested=True, next_attempt_at=now, updated_at=now
        )
        _enqueue(ids)
    return ids


def grants_request_update(*, benefit_id) -> int:
    """The benefit's settings changed: every live grant of it applies them (in batches)."""
    now = clock.now()
    updated = BenefitGrant.objects.filter(benefit_id=benefit_id, wanted=W.GRANTED, status=G.GRANTED).update(
        update_requested=True, next_attempt_at=now, updated_at=now
    )
    transaction.on_commit(_sweep_soon, robust=True)
    return updated


def grants_request_revoke_all(*, benefit_id, reason: str) -> int:
    now = clock.now()
    updated = BenefitGrant.objects.filter(benefit_id=benefit_id, wanted=W.GRANTED).update(
        wanted=W.REVOKED, revoke_reason=reason[:200], next_attempt_at=now, attempts=0, updated_at=now
    )
    transaction.on_commit(_sweep_soon, robust=True)
    return updated


def _sweep_soon() -> None:
    from benefits.tasks import sweep_grants

    sweep_grants.delay()


# --- A product's existing holders, when its benefits change --------------------------------


def product_benefit_sync(*, product_benefit_id, batch: int = FANOUT_BATCH) -> bool:
    """Grant (or, for a removed benefit, revoke) one product benefit to the next ``batch`` of
    the product's holders, in one transaction; the cursor on the row says where the next
    batch starts, so a killed worker resumes there. Returns True when more is left."""
    with transaction.atomic():
        link = lock_one(
            ProductBenefit.objects.select_related("benefit"), product_benefit_id, skip_locked=True
        )
        if link is None or (link.synced_at is not None and link.removed_at is None):
            return False
        if link.removed_at is not None or link.benefit.deleted_at is not None:
            return _unsync_batch(link, batch)
        return _sync_batch(link, batch)


def _sync_batch(link: ProductBenefit, batch: int) -> bool:
    now = clock.now()
    cursor = link.sync_cursor
    subscriptions = selectors.holding_subscriptions(now=now).filter(product_id=link.product_id).order_by("pk")
    orders = selectors.holding_orders().filter(product_id=link.product_id).order_by("pk")
    # The cursor is "s:<id>" while subscriptions are granted, then "o:<id>" for orders.
    phase, _, after = cursor.partition(":") if cursor else ("s", "", "")
    source = subscriptions if phase == "s" else orders
    if after:
        source = source.filter(pk__gt=after)
    rows = list(source.values("pk", "customer_id", "organization_id")[:batch])
    field = "subscription_id" if phase == "s" else "order_id"
    if rows:
        BenefitGrant.objects.bulk_create(
            [
                BenefitGrant(
                    organization_id=r["organization_id"],
                    customer_id=r["customer_id"],
                    benefit_id=link.benefit_id,
                    next_attempt_at=now,
                    **{field: r["pk"]},
                )
                for r in rows
            ],
            ignore_conflicts=True,
        )
        scope_ids = [r["pk"] for r in rows]
        # Holders whose grant of it was revoked earlier (it was removed, then added back).
        BenefitGrant.objects.filter(
            benefit_id=link.benefit_id, wanted=W.REVOKED, **{f"{field}__in": scope_ids}
        ).update(wanted=W.GRANTED, revoke_reason="", next_attempt_at=now, attempts=0, updated_at=now)
        pending = BenefitGrant.objects.filter(
            benefit_id=link.benefit_id, next_attempt_at__isnull=False, **{f"{field}__in": scope_ids}
        ).values_list("pk", flat=True)
        _enqueue(list(pending))
    if len(rows) == batch:
        link.sync_cursor = f"{phase}:{rows[-1]['pk']}"
    elif phase == "s":
        link.sync_cursor = "o:"
    else:
        link.sync_cursor, link.synced_at = "", now
    link.save(update_fields=["sync_cursor", "synced_at", "updated_at"])
    return link.synced_at is None


def _unsync_batch(link: ProductBenefit, batch: int) -> bool:
    """Revoke the removed benefit from the product's scopes, a batch at a time; delete the link
    when none is left. Holders of the same benefit through another product keep theirs
    (grants are per scope: only this product's subscriptions and orders lose it)."""
    now = clock.now()
    reason = "benefit removed from the product"
    ids = list(
        BenefitGrant.objects.filter(benefit_id=link.benefit_id, wanted=W.GRANTED)
        .filter(_product_scope(link.product_id))
        .values_list("pk", flat=True)[:batch]
    )
    BenefitGrant.objects.filter(pk__in=ids).update(
        wanted=W.REVOKED, revoke_reason=reason, next_attempt_at=now, attempts=0, updated_at=now
    )
    _enqueue(ids)
    if len(ids) == batch:
        return True
    link.delete()
    return False


def _product_scope(product_id):
    return Q(subscription__product_id=product_id) | Q(subscription__isnull=True, order__product_id=product_id)


# --- Doing one grant's work ---------------------------------------------------------------


def _next_action(grant: BenefitGrant) -> str | None:
    if grant.wanted == W.GRANTED and grant.status != G.GRANTED:
        return "grant"
    if grant.wanted == W.REVOKED:
        if grant.status == G.GRANTED or (grant.status == G.PENDING and grant.attempts > 0):
            return "revoke"  # a failed grant may have half-happened at the other side: undo it
        if grant.status == G.PENDING:
            return "drop"  # never granted: nothing to undo
        return None
    if grant.update_requested:
        return "update"
    if grant.cycle_requested:
        return "cycle"
    return None


def grant_process(*, grant_id) -> str | None:
    """Do what the grant still wants, one action after another (at most a few). Returns the
    last action done, or None when there was nothing to do (or another worker holds it)."""
    done = None
    for _ in range(ACTIONS_PER_CALL):
        result, more = _process_once(grant_id)
        if result in (None, "busy", "failed"):
            return done if result is None else result
        done = result
        if not more:  # nothing left to do: no need to look again
            break
    return done


def _process_once(grant_id) -> tuple[str | None, bool]:
    """One action in one transaction: (what was done or why not, whether more is pending)."""
    with transaction.atomic():
        grant = lock_one(BenefitGrant.objects.select_related("benefit"), grant_id, skip_locked=True)
        if grant is None:
            return "busy", False
        now = clock.now()
        if grant.next_attempt_at is None or grant.next_attempt_at > now:
            return None, False
        if grant.claimed_until is not None and grant.claimed_until > now:
            return "busy", False
        action = _next_action(grant)
        if action is None:
            grant.next_attempt_at = None
            grant.claimed_until = None
            grant.save(update_fields=["next_attempt_at", "claimed_until", "updated_at"])
            return None, False
        if action == "drop":
            _apply(grant, "drop", dict(grant.properties), now)
            return action, grant.next_attempt_at is not None
        strategy = strategy_for(grant.benefit.type)
        if not strategy.calls_out:
            try:
                with transaction.atomic():  # the strategy's writes go if it fails
                    properties = getattr(strategy, action)(grant=grant, benefit=grant.benefit)
            except BenefitError as exc:
                _fail(grant, exc, now)
                return "failed", False
            except Exception as exc:  # a bug: retried with backoff and shown, not retried every sweep
                logger.exception("benefit grant %s: %s failed", grant_id, action)
                _fail(grant, BenefitRetryableError(f"{type(exc).__name__}: {exc}"), now)
                return "failed", False
            _apply(grant, action, properties, now)
            crash_point("benefits.grant_recorded")  # before the outcome commits
            return action, grant.next_attempt_at is not None
        claim = grant.claimed_until = now + CLAIM
        asked = (grant.cycle_requested, grant.update_requested)
        grant.save(update_fields=["claimed_until", "updated_at"])
    # A strategy that calls out runs with the grant claimed, not locked.
    try:
        properties, error = getattr(strategy, action)(grant=grant, benefit=grant.benefit), None
    except BenefitError as exc:
        properties, error = None, exc
    except Exception as exc:  # a bug or an unexpected answer: retried, and shown on the grant
        logger.exception("benefit grant %s: %s failed", grant_id, action)
        properties, error = None, BenefitRetryableError(f"{type(exc).__name__}: {exc}")
    with transaction.atomic():
        grant = lock_one(BenefitGrant.objects.select_related("benefit"), grant_id)
        now = clock.now()
        if grant.claimed_until != claim:
            # The call outlived its claim and another worker took the grant over (and may have
            # recorded the same action): its outcome stands; recording this one would double it.
            logger.warning("benefit grant %s: %s outlived its claim; outcome dropped", grant_id, action)
            return "busy", False
        if error is not None:
            _fail(grant, error, now)
            return "failed", False
        # What was wanted may have changed meanwhile: record this, and the next action follows.
        # A cycle or an update asked for during the call was not seen by it: it stays asked.
        late = (grant.cycle_requested and not asked[0], grant.update_requested and not asked[1])
        _apply(grant, action, properties, now, keep=late)
        crash_point("benefits.grant_recorded")
        return action, grant.next_attempt_at is not None


EVENT_OF = {
    "grant": "benefit_grant.created",
    "revoke": "benefit_grant.revoked",
    "cycle": "benefit_grant.cycled",
}


def _apply(grant: BenefitGrant, action: str, properties: dict, now, keep=(False, False)) -> None:
    event = EVENT_OF.get(action, "benefit_grant.updated")
    if action == "grant":
        if grant.granted_at is not None:
            event = "benefit_grant.updated"  # granted again after a revocation
        grant.status, grant.granted_at, grant.revoked_at = G.GRANTED, now, None
        grant.cycle_requested = grant.update_requested = False  # a fresh grant is current
    elif action in ("revoke", "drop"):
        grant.status, grant.revoked_at = G.REVOKED, now
        grant.cycle_requested = grant.update_requested = False
    elif action == "cycle":
        grant.cycle_requested = False
    elif action == "update":
        grant.update_requested = False
    if grant.status == G.GRANTED:
        grant.cycle_requested = grant.cycle_requested or keep[0]
        grant.update_requested = grant.update_requested or keep[1]
    grant.properties = properties
    grant.attempts, grant.error, grant.errored_at, grant.claimed_until = 0, "", None, None
    grant.next_attempt_at = now if _next_action(grant) else None
    grant.save()
    if action != "drop":
        event_record(type=event, obj=grant)


def _fail(grant: BenefitGrant, exc: BenefitError, now) -> None:
    grant.attempts += 1
    grant.error, grant.errored_at, grant.claimed_until = str(exc)[:2000] or type(exc).__name__, now, None
    if isinstance(exc, BenefitRetryableError) and grant.attempts < MAX_ATTEMPTS:
        delay = timedelta(seconds=exc.retry_after) if exc.retry_after else _backoff(grant.attempts)
        grant.next_attempt_at = now + min(delay, MAX_BACKOFF)
    else:
        grant.next_attempt_at = None  # given up: the grants list shows it, an operator retries
    grant.save()
    logger.warning("benefit grant %s failed (attempt %s): %s", grant.pk, grant.attempts, grant.error)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), MAX_BACKOFF.total_seconds()))


# --- Finding what was left ----------------------------------------------------------------


def grants_due(*, limit: int = 1000) -> list:
    now = clock.now()
    return list(
        BenefitGrant.objects.filter(next_attempt_at__lte=now)
        .exclude(claimed_until__gt=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def product_benefits_unsynced(*, limit: int = 100) -> list:
    return list(
        ProductBenefit.objects.filter(Q(synced_at__isnull=True) | Q(removed_at__isnull=False))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
