"""Every periodic job, defined in code and installed into django-celery-beat.

``manage.py install_schedules`` makes the database match this list (idempotent); it
runs on ``make run`` and on every deploy. Later issues append their jobs here.
"""

from dataclasses import dataclass
from datetime import timedelta

HEARTBEAT_INTERVAL = timedelta(seconds=30)
HEARTBEAT_TASK_NAME = "recur: heartbeat"


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    every: timedelta | None = None
    crontab: str | None = None  # "minute hour day_of_month month_of_year day_of_week"
    description: str = ""


SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        HEARTBEAT_TASK_NAME,
        "core.tasks.heartbeat",
        every=HEARTBEAT_INTERVAL,
        description="Proves beat and a worker are alive; shown on the dashboard.",
    ),
    Schedule(
        "recur: sweep external events",
        "payments.sweep_external_events",
        every=timedelta(minutes=1),
        description="Re-enqueues Stripe events whose task was lost and failed ones due for a retry.",
    ),
    Schedule(
        "recur: expire checkouts",
        "checkout.expire_checkouts",
        every=timedelta(minutes=15),
        description="Expires open checkouts after 24 hours and reopens abandoned confirmations.",
    ),
    Schedule(
        "recur: dispatch renewals",
        "subscriptions.dispatch_renewals",
        every=timedelta(minutes=1),
        description="Claims subscriptions whose period ended and cycles them in chunks.",
    ),
    Schedule(
        "recur: dunning",
        "subscriptions.run_dunning",
        crontab="5 * * * *",
        description="Retries failed renewal payments whose next attempt is due.",
    ),
    Schedule(
        "recur: revoke benefits after grace",
        "subscriptions.revoke_benefits",
        every=timedelta(minutes=1),
        description="Records subscription.revoked for subscriptions whose paid period or grace period "
        "ended (benefits are revoked on it).",
    ),
    Schedule(
        "recur: purge expired idempotency keys",
        "core.tasks.purge_idempotency_keys",
        crontab="17 * * * *",
        description="Deletes Idempotency-Key records older than 24 hours.",
    ),
    Schedule(
        "recur: reconcile ledger",
        "ledger.reconcile",
        crontab="40 3 * * *",
        description="Checks the ledger balances and every paid order is posted; stores the result.",
    ),
)
SCHEDULES += (
    Schedule(
        "recur: resubmit pending refunds",
        "refunds.sweep_refunds",
        every=timedelta(minutes=1),
        description="Settles refunds pending for minutes from the processor: retrieves them, finds "
        "them by metadata when their id was never learnt, and sends only those it provably lacks.",
    ),
)
SCHEDULES += (
    Schedule(
        "recur: sweep processor fees",
        "ledger.sweep_payment_fees",
        every=timedelta(minutes=1),
        description="Reads and posts the Stripe fee of succeeded payments whose fee task was lost.",
    ),
)
SCHEDULES += (
    Schedule(
        "recur: check invariants",
        "ledger.check_invariants",
        every=timedelta(minutes=10),
        description="Checks that no work is stranded (orders, payments, claims, renewals, refunds) "
        "and the ledger reconciles; stores the run for the dashboard.",
    ),
)
SCHEDULES += (
    Schedule(
        "recur: collect due orders",
        "subscriptions.collect_due_orders",
        every=timedelta(minutes=1),
        description="Starts the first payment attempt of orders whose collection task was lost.",
    ),
)
SCHEDULES += (
    Schedule(
        "recur: settle stale payments",
        "payments.settle_stale_payments",
        every=timedelta(minutes=2),
        description="Asks Stripe about payments still in flight after a few minutes and applies its answer.",
    ),
)
SCHEDULES += (
    Schedule(
        "recur: sweep domain events",
        "events.sweep",
        every=timedelta(minutes=1),
        description="Dispatches events whose task was lost and re-runs consumers left pending or due a retry.",
    ),
)
SCHEDULES += (
    Schedule(
        "recur: sweep webhook deliveries",
        "webhooks.sweep",
        every=timedelta(seconds=15),
        description="Sends due webhook retries and deliveries a lost task or a killed sender left; "
        "disables endpoints whose deliveries have failed for 24 hours.",
    ),
)
SCHEDULES += (
    Schedule(
        "recur: trials ending soon",
        "subscriptions.notify_trials_ending",
        crontab="*/15 * * * *",
        description="Records subscription.trial_will_end 3 days before a trial ends, once per trial end.",
    ),
)
SCHEDULES += (
    Schedule(
        "recur: sweep benefit grants",
        "benefits.sweep_grants",
        every=timedelta(minutes=1),
        description="Grants, revokes and cycles benefit grants whose work is due (new, retrying, or "
        "left by a lost task), and fans benefits added to or removed from products out to their holders.",
    ),
)
