"""``manage.py bench_webhooks`` end to end at a tiny size: a real receiver process, real
Celery workers, every event delivered to every endpoint and the report printed."""

import re
from io import StringIO

import pytest
from django.core.management import call_command

from billing.webhooks.models import WebhookDelivery, WebhookEndpoint
from core.events.models import Event


@pytest.mark.django_db(transaction=True)
def test_bench_webhooks_runs_end_to_end_at_a_tiny_size():
    out = StringIO()

    call_command(
        "bench_webhooks",
        "--events=50",
        "--batch=10",
        "--customers=20",
        "--rate=20",
        "--seconds=1",
        "--workers=1",
        "--floor=100",
        "--timeout=30",
        stdout=out,
    )

    report = out.getvalue()
    assert re.search(r"floor: [\d,]+ signed POSTs/s", report), report
    assert re.search(
        r"burst: 50 events x 2 endpoints = 100 deliveries in [\d.]+ s = [\d,]+ deliveries/s", report
    )
    assert "repeats 0" in report and "signatures verified with standardwebhooks" in report
    assert re.search(r"steady: 20 events at [\d.]+/s", report), report
    assert re.search(r"per event \(every endpoint has it\): p50 [\d,]+ ms, p95 [\d,]+ ms, p99", report)
    assert re.search(r"[\d.]+% of events delivered within 1 s of their commit", report)
    assert "never arrived" not in report
    # it cleans up after itself
    assert not WebhookEndpoint.objects.exists()
    assert not Event.objects.exists() and not WebhookDelivery.objects.exists()
