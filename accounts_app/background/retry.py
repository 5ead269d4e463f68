"""Retries with exponential backoff for outbound work, and the dead letter after the last try."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.tasks import TaskContext
from django.utils import timezone

from accounts_app.background.models import TaskFailure

logger = logging.getLogger(__name__)


def backoff(attempt: int) -> timedelta:
    """The wait before try `attempt + 1`: TASKS_RETRY_BACKOFF, doubling with each try."""
    return timedelta(seconds=settings.TASKS_RETRY_BACKOFF * 2 ** (attempt - 1))


def retry_or_dead_letter(context: TaskContext, error: Exception, kwargs: dict) -> bool:
    """After a failed try: enqueue the next one later, or record the final failure.

    Returns True when another try was enqueued. The caller re-raises, so that this try
    shows as failed, with its error, in the queue table. The error text is the
    exception's own: no task is given a secret, so none can be in it.
    """
    attempt = kwargs.get("attempt", 1)
    task = context.task_result.task
    # An error may say that no later try can succeed (a chat platform refusing our
    # signature): retrying it would only delay the failed task staff must see.
    worth_retrying = getattr(error, "retryable", True)
    if (
        worth_retrying
        and attempt < settings.TASKS_MAX_ATTEMPTS
        and task.get_backend().supports_defer
    ):
        task.using(run_after=timezone.now() + backoff(attempt)).enqueue(
            **{**kwargs, "attempt": attempt + 1}
        )
        logger.warning("%s failed (try %s), retrying: %s", task.name, attempt, error)
        return True
    TaskFailure.objects.update_or_create(
        task_id=str(context.task_result.id),
        defaults={
            "task_path": task.module_path,
            "arguments": {k: v for k, v in kwargs.items() if k != "attempt"},
            "attempts": attempt,
            "error": f"{type(error).__name__}: {error}"[:4000],
        },
    )
    logger.error("%s failed for good after %s tries: %s", task.name, attempt, error)
    return False


def retry_failure(failure: TaskFailure) -> str:
    """Enqueue a dead-lettered task again from its first try; returns the new task's ID."""
    from django.utils.module_loading import import_string

    task = import_string(failure.task_path)
    result = task.enqueue(**failure.arguments)
    TaskFailure.objects.filter(pk=failure.pk).update(retried_at=timezone.now())
    return str(result.id)
