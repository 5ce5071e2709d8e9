"""``subscription.trial_will_end``: recorded 3 days before a trial ends, once per trial end.

The subscription row says whether it was sent: ``trial_will_end_notified_for`` holds the trial
end it was recorded for, set in the transaction that records the event. A re-run finds
nothing new; a trial extended to a new end no longer matches its marker, so it is sent again
before the new end. Rows another transaction holds are left for the next run."""

from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q

from billing.subscriptions.locks import subscriptions_lock
from billing.subscriptions.models import Subscription
from core import clock
from core.events.services import events_record_bulk

TRIAL_WILL_END_NOTICE = timedelta(days=3)
BATCH = 500


def _due(now) -> Q:
    return Q(
        status=Subscription.Status.TRIALING,
        trial_end__gt=now,
        trial_end__lte=now + TRIAL_WILL_END_NOTICE,
    ) & (Q(trial_will_end_notified_for__isnull=True) | ~Q(trial_will_end_notified_for=F("trial_end")))


def subscriptions_trial_will_end_notify() -> int:
    """Record ``subscription.trial_will_end`` for every trial ending within 3 days that was not
    told about that end yet. Idempotent; returns the number of events recorded."""
    now = clock.now()
    recorded, after = 0, None
    while True:
        pending = Subscription.objects.filter(_due(now)).order_by("pk")
        if after is not None:
            pending = pending.filter(pk__gt=after)
        ids = list(pending.values_list("pk", flat=True)[:BATCH])
        if not ids:
            return recorded
        after = ids[-1]
        with transaction.atomic():
            locked = subscriptions_lock(ids, skip_locked=True)
            # Re-checked under the lock: an extension or a conversion may have landed meanwhile.
            due = Subscription.objects.filter(_due(now), pk__in=[s.pk for s in locked]).order_by("pk")
            events = events_record_bulk(type="subscription.trial_will_end", objects=due)
            Subscription.objects.filter(pk__in=[e.object_id for e in events]).update(
                trial_will_end_notified_for=F("trial_end")
            )
        recorded += len(events)
