"""Reads of the platform's own health, shared by the dashboard and the API."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django_celery_beat.models import PeriodicTask

from core import clock
from core.models import JobHeartbeat
from core.schedules import HEARTBEAT_INTERVAL, HEARTBEAT_TASK_NAME

STALE_AFTER = HEARTBEAT_INTERVAL * 3


@dataclass(frozen=True)
class ProcessHealth:
    alive: bool
    last_seen_at: datetime | None
    detail: str


@dataclass(frozen=True)
class SystemHealth:
    worker: ProcessHealth
    beat: ProcessHealth


def _health(last: datetime | None, detail: str, stale_after: timedelta) -> ProcessHealth:
    alive = last is not None and clock.now() - last <= stale_after
    return ProcessHealth(alive=alive, last_seen_at=last, detail=detail)


def system_health() -> SystemHealth:
    """Beat is alive if it sent the heartbeat lately; a worker, if one ran it lately."""
    beat_last = (
        PeriodicTask.objects.filter(name=HEARTBEAT_TASK_NAME).values_list("last_run_at", flat=True).first()
    )
    ran = JobHeartbeat.objects.filter(name="heartbeat").first()
    return SystemHealth(
        worker=_health(ran.last_run_at if ran else None, ran.hostname if ran else "", STALE_AFTER),
        beat=_health(beat_last, HEARTBEAT_TASK_NAME, STALE_AFTER),
    )
