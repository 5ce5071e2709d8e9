"""The one place code reads "now" from, so tests and time travel move one clock."""

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
