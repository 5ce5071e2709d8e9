"""``manage.py bench_api`` end to end on a small crowd, so the benchmark does not rot."""

import io
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


def test_bench_api_in_process_serves_every_scenario_with_its_status():
    out = io.StringIO()

    call_command("bench_api", customers=200, in_process=5, stdout=out)

    lines = {line.split()[0]: line for line in out.getvalue().splitlines() if "cpu/req" in line}
    assert set(lines) == {scenario.name for scenario in SCENARIOS}
    for scenario in SCENARIOS:
        assert f" 0 not {scenario.status} " in lines[scenario.name], lines[scenario.name]
    trips = {name: float(line.split("db round trips")[1].split()[0]) for name, line in lines.items()}
    # (inside the test's transaction, every atomic block is a savepoint: more trips than served)
    assert trips["floor_404"] == 0 and 1 <= trips["lookup"] < trips["create"]
    # The creates were served (in this process, so in this test's database).
    assert Customer.objects.filter(email__startswith="new.").count() >= 5
