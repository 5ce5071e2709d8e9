"""The base class of every Celery task: a task that lost a race in the database (a deadlock,
a serialization failure, or a service that kept losing) is retried later instead of
failing. Tasks are idempotent, so running one again is always safe."""

from celery import Task

from core.retry import backoff, is_transient

TASK_RETRIES = 8


class RecurTask(Task):
    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            if not is_transient(exc) or self.request.called_directly:
                raise
            raise self.retry(
                exc=exc, countdown=backoff(self.request.retries + 1, base=0.5), max_retries=TASK_RETRIES
            ) from exc
