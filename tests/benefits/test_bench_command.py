"""``manage.py bench_benefit_events`` runs end to end on a few subscriptions and leaves nothing."""

from io import StringIO

import pytest
from django.core.management import call_command

from benefits.models import BenefitGrant
from billing.subscriptions.models import Subscription
from core.events.models import Event


@pytest.mark.django_db(transaction=True)
def test_the_benchmark_runs_and_cleans_up():
    out = StringIO()
    call_command("bench_benefit_events", n=20, customers=5, stdout=out)
    text = out.getvalue()
    assert "floor: 1,000 SELECT 1" in text
    # (Tasks run in-process here, so the cycles were processed on commit already.)
    assert text.count("20 renewals in") == 2 and "cycles it asked for" in text and "0 left" in text
    assert not Subscription.objects.exists() and not BenefitGrant.objects.exists()
    assert not Event.objects.filter(type="subscription.cycled").exists()
