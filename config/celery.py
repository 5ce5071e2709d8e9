"""The Celery app. Reliability settings live in config/settings.py (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Every task retries database races (core.task_base).
app = Celery("recur", task_cls="core.task_base:RecurTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
