"""subscription.trial_will_end: 3 days before a trial ends, once per trial end, by a beat job."""

from datetime import timedelta

import pytest
import time_machine

from billing.subscriptions import services as subscription_services
from billing.subscriptions.models import Subscription
from billing.subscriptions.tasks import notify_trials_ending
from core.events.models import Event
from core.schedules import SCHEDULES
from tests.subscriptions.scenario import START, subscribe

pytestmark = pytest.mark.django_db(transaction=True)  # subscribing pays after commit
DAY = timedelta(days=1)


def notices() -> list[Event]:
    return list(Event.objects.filter(type="subscription.trial_will_end").order_by("id"))


def test_sent_three_days_before_each_trial_end_and_only_once(manual_org, plans, assert_matches_schema):
    trialing = subscribe(manual_org, plans["basic"], trial_days=14)
    no_trial = subscribe(manual_org, plans["pro"])
    assert trialing.status == "trialing" and no_trial.status == "active"
    trial_end = trialing.trial_end

    with time_machine.travel(trial_end - 3 * DAY - timedelta(minutes=1), tick=False):
        assert notify_trials_ending() == 0  # not yet
    with time_machine.travel(trial_end - 3 * DAY + timedelta(minutes=5), tick=False):
        assert notify_trials_ending() == 1
        assert notify_trials_ending() == 0  # a re-run records nothing new
    with time_machine.travel(trial_end - DAY, tick=False):
        assert notify_trials_ending() == 0
        trialing = subscription_services.subscription_trial_extend(
            subscription=trialing, trial_end=trial_end + 10 * DAY
        )
        assert notify_trials_ending() == 0  # the new end is 11 days away
    with time_machine.travel(trial_end + 8 * DAY, tick=False):
        assert notify_trials_ending() == 1  # the extended trial gets its own notice
        assert notify_trials_ending() == 0

    first, second = notices()
    assert {first.object_id, second.object_id} == {str(trialing.pk)}
    assert first.data["trial_end"] != second.data["trial_end"]
    assert second.data["trial_end"] == trialing.trial_end.isoformat().replace("+00:00", "Z")
    assert Subscription.objects.get(pk=trialing.pk).trial_will_end_notified_for == trialing.trial_end
    assert_matches_schema([first, second])


def test_a_trial_ended_early_or_already_over_is_not_announced(manual_org, plans):
    ended = subscribe(manual_org, plans["basic"], trial_days=14)
    with time_machine.travel(START + DAY, tick=False):
        subscription_services.subscription_trial_end_now(subscription=ended)
    with time_machine.travel(ended.trial_end - 2 * DAY, tick=False):
        assert notify_trials_ending() == 0
    assert notices() == []


def test_the_job_is_scheduled():
    (schedule,) = [s for s in SCHEDULES if s.task == "subscriptions.notify_trials_ending"]
    assert schedule.crontab == "*/15 * * * *"
