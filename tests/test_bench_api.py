"""``manage.py bench_api`` end to end on a small crowd, so the benchmark does not rot."""

import json

import pytest
from django.core.management import call_command

from accounts.management.commands.bench_api import BENCH_SLUG, SCENARIOS, Command, missing_indexes
from accounts.models import Customer, Organization

pytestmark = pytest.mark.django_db(transaction=True)  # gunicorn reads what the command seeded


def test_bench_api_runs_every_scenario(tmp_path):
    out = tmp_path / "bench.json"

    call_command("bench_api", customers=300, rate=20, duration=0.5, workers=1, json_path=str(out))

    summary = json.loads(out.read_text())
    assert set(summary["sql_before_ms"]) == {"lookup_upper", "lookup_lower", "search", "search_indexed"}
    for scenario in SCENARIOS:
        result = summary["scenarios"][scenario.name]
        assert result["statuses"] == {str(scenario.status): result["sent"]}, (scenario.name, result)
        assert result["errors"] == {} and result["p99_ms"] is not None
        assert 0 < result["machine_pace_s"] < 30  # measured before each scenario, in seconds
    organization = Organization.objects.get(slug=BENCH_SLUG)
    created = summary["scenarios"]["create"]["sent"]
    # The crowd, the counted creates and the warm-up's.
    assert Customer.objects.filter(organization=organization).count() > 300 + created


def test_bench_api_reuses_its_crowd_and_keeps_its_indexes():
    command = Command()
    _, started, before = command._population(200)
    assert before and Customer.objects.count() == 200

    _, again, before = command._population(200)

    assert before == {} and again == started and Customer.objects.count() == 200
    assert missing_indexes() == []
