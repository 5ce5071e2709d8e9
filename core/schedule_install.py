"""Installs core.schedules into django-celery-beat's tables."""

from dataclasses import dataclass

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from core.schedules import SCHEDULES, Schedule

MANAGED_PREFIX = "recur: "


@dataclass
class InstallResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0


def _schedule_fields(schedule: Schedule) -> dict:
    if schedule.every is not None:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=int(schedule.every.total_seconds()), period=IntervalSchedule.SECONDS
        )
        return {"interval": interval, "crontab": None}
    minute, hour, day_of_month, month_of_year, day_of_week = schedule.crontab.split()
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone="UTC",
    )
    return {"interval": None, "crontab": crontab}


@transaction.atomic
def schedules_install() -> InstallResult:
    result = InstallResult()
    for schedule in SCHEDULES:
        assert schedule.name.startswith(MANAGED_PREFIX), schedule.name
        wanted = {
            "task": schedule.task,
            "description": schedule.description,
            "enabled": True,
            **_schedule_fields(schedule),
        }
        task = PeriodicTask.objects.filter(name=schedule.name).first()
        if task is None:
            PeriodicTask.objects.create(name=schedule.name, **wanted)
            result.created += 1
        elif any(getattr(task, field) != value for field, value in wanted.items()):
            for field, value in wanted.items():
                setattr(task, field, value)
            task.save()
            result.updated += 1
        else:
            result.unchanged += 1
    stale = PeriodicTask.objects.filter(name__startswith=MANAGED_PREFIX).exclude(
        name__in=[s.name for s in SCHEDULES]
    )
    result.removed, _ = stale.delete()
    return result
