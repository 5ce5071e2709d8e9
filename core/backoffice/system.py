"""The dashboard's System panel: are the Celery worker and beat alive?"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Q
from django_celery_beat.models import PeriodicTask

from core.selectors import ProcessHealth, system_health


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    state: str  # "alive", "stale" or "never"
    last_seen_at: datetime | None
    detail: str

    @property
    def tone(self) -> str:
        return {"alive": "good", "stale": "bad", "never": "warn"}[self.state]


@dataclass(frozen=True)
class SystemStatus:
    worker: ProcessStatus
    beat: ProcessStatus
    last_tick_at: datetime | None  # the latest time beat sent any enabled periodic task
    enabled_tasks: int

    @property
    def processes(self) -> tuple[ProcessStatus, ProcessStatus]:
        return (self.worker, self.beat)


def _status(name: str, health: ProcessHealth) -> ProcessStatus:
    state = "alive" if health.alive else "stale"
    if health.last_seen_at is None:
        state = "never"
    return ProcessStatus(name=name, state=state, last_seen_at=health.last_seen_at, detail=health.detail)


def system_status() -> SystemStatus:
    health = system_health()
    tasks = PeriodicTask.objects.aggregate(
        last_tick_at=Max("last_run_at", filter=Q(enabled=True)), enabled=Count("id", filter=Q(enabled=True))
    )
    return SystemStatus(
        worker=_status("Worker", health.worker),
        beat=_status("Beat", health.beat),
        last_tick_at=tasks["last_tick_at"],
        enabled_tasks=tasks["enabled"],
    )
