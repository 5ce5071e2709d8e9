"""The ``state`` scenario of ``manage.py bench_api`` on a small crowd, so it does not rot."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from benefits.bench_scenarios import BENEFITS, STATE_EVERY
from benefits.models import BenefitGrant
from billing.subscriptions.models import Subscription

pytestmark = pytest.mark.django_db(transaction=True)  # gunicorn reads what the command seeded


def test_state_scenario_seeds_once_and_answers(tmp_path):
    out = tmp_path / "bench.json"

    call_command(
        "bench_api", customers=300, rate=20, duration=0.5, workers=1, scenarios="state", json_path=str(out)
    )
    call_command("bench_api", customers=300, rate=20, duration=0.5, workers=1, scenarios="state")

    result = json.loads(out.read_text())["scenarios"]["state"]
    assert result["statuses"] == {"200": result["sent"]} and result["errors"] == {}
    holders = 300 // STATE_EVERY
    assert Subscription.objects.filter(status="active").count() == holders  # seeded once
    assert BenefitGrant.objects.filter(status="granted").count() == holders * len(BENEFITS)


def test_bench_state_times_every_kind():
    out = StringIO()

    call_command("bench_state", customers=300, requests=5, stdout=out)

    report = out.getvalue()
    assert "GET /v1/customers/{id}/state                     3" in report  # 3 reads: the token is remembered
    assert report.count(" p99 ") == 4
