"""Operational services: job heartbeats."""

import socket

from django.db import transaction
from django.db.models import F

from core import clock
from core.models import JobHeartbeat


@transaction.atomic
def heartbeat_record(*, name: str, hostname: str | None = None) -> JobHeartbeat:
    now = clock.now()
    host = hostname or socket.gethostname()
    updated = JobHeartbeat.objects.filter(name=name).update(
        last_run_at=now, hostname=host, runs=F("runs") + 1
    )
    if not updated:
        JobHeartbeat.objects.get_or_create(
            name=name, defaults={"last_run_at": now, "hostname": host, "runs": 1}
        )
    return JobHeartbeat.objects.get(name=name)
