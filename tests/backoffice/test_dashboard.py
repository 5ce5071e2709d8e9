import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from core import clock
from core.backoffice.dashboard import Dashboard, Metric
from core.models import JobHeartbeat
from core.schedules import HEARTBEAT_TASK_NAME
from core.services import heartbeat_record

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")


def process_row(html: str, name: str) -> str:
    match = re.search(rf'<tr data-process="{name}">(.*?)</tr>', html, re.S)
    assert match, f"no {name} row in the System panel"
    return match.group(1)


def heartbeat_task(last_run_at) -> PeriodicTask:
    every, _ = IntervalSchedule.objects.get_or_create(every=30, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.update_or_create(
        name=HEARTBEAT_TASK_NAME,
        defaults={"task": "core.tasks.heartbeat", "interval": every, "last_run_at": last_run_at},
    )[0]


def test_dashboard_renders_cards_and_app_list(backoffice, org, make_token):
    make_token(org)
    revoked, _ = make_token(org)
    revoked.revoked_at = clock.now()
    revoked.save()

    response = backoffice.get(INDEX)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Recur backoffice" in html
    for title in (
        "MRR",
        "Active subscriptions",
        "Revenue · 30 days",
        "Failed payments · 7 days",
        "Payouts due",
    ):
        assert title in html
    assert "arrives with payouts" in html
    cards = {card.key: card for card in response.context["cards"]}
    assert cards["payouts_due"].placeholder and cards["payouts_due"].value == "—"
    assert not cards["mrr"].placeholder and cards["mrr"].value == "0"
    assert cards["organizations"].value == "1"
    assert cards["access_tokens"].value == "1"  # the revoked one does not count
    assert cards["customers"].value == "0"
    # The usual app list stays reachable.
    assert reverse("admin:accounts_customer_changelist") in html
    assert reverse("admin:django_celery_beat_periodictask_changelist") in html
    # htmx, the backoffice assets and the modal container are on every page.
    assert "django_htmx/htmx-2.min.js" in html
    assert "backoffice/backoffice.js" in html
    assert 'id="modal"' in html


def test_system_panel_without_heartbeat(backoffice):
    html = backoffice.get(INDEX).content.decode()

    assert "never" in process_row(html, "worker")
    assert "never" in process_row(html, "beat")
    assert "no task sent yet" in process_row(html, "tick")


def test_system_panel_stale_heartbeat(backoffice):
    heartbeat_record(name="heartbeat", hostname="worker-1")
    heartbeat_task(clock.now() - timedelta(hours=1))
    JobHeartbeat.objects.filter(name="heartbeat").update(last_run_at=clock.now() - timedelta(hours=1))

    html = backoffice.get(INDEX).content.decode()

    assert "stale" in process_row(html, "worker")
    assert "worker-1" in process_row(html, "worker")
    assert "stale" in process_row(html, "beat")


def test_system_panel_alive(backoffice):
    heartbeat_record(name="heartbeat", hostname="worker-7@box")
    tick = clock.now()
    heartbeat_task(tick)

    html = backoffice.get(INDEX).content.decode()

    worker, beat = process_row(html, "worker"), process_row(html, "beat")
    assert "alive" in worker and "stale" not in worker
    assert "worker-7@box" in worker
    assert "alive" in beat
    assert tick.strftime("%Y-%m-%d %H:%M:%S") in process_row(html, "tick")
    assert reverse("admin:django_celery_beat_periodictask_changelist") in html


def test_dashboard_hides_cards_the_user_may_not_see(client, make_staff):
    client.force_login(make_staff())  # staff, no role: no permissions

    response = client.get(INDEX)

    assert response.status_code == 200
    keys = {card.key for card in response.context["cards"]}
    assert "customers" not in keys and "organizations" not in keys
    assert response.context["recent_audit"] is None


def test_card_registry_real_card_replaces_placeholder_whatever_the_order(rf, operator):
    board = Dashboard()

    @board.card("mrr", title="MRR", order=10)
    def mrr(request):
        return Metric("$1,234.00", hint="monthly")

    board.placeholder("mrr", title="MRR", feature="subscriptions", order=10)

    @board.card("broken", title="Broken", order=20)
    def broken(request):
        raise RuntimeError("boom")

    request = rf.get("/")
    request.user = operator
    cards = board.cards(request)
    assert [(c.key, c.value, c.placeholder) for c in cards] == [
        ("mrr", "$1,234.00", False),
        ("broken", "error", False),
    ]
    assert cards[1].error
