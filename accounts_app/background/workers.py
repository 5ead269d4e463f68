"""Worker heartbeats, the queue's health, and handing a dead worker's task to another.

django-tasks-db marks a claimed task RUNNING and leaves it so if its worker dies. Every
worker beats here every TASKS_HEARTBEAT_SECONDS; on each beat it also puts back in the
queue every task whose worker has been silent for TASKS_WORKER_TIMEOUT (a
compare-and-set on the task row), so that another worker runs it again. Tasks are
idempotent, so running one twice does no harm.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Min
from django.tasks import TaskResultStatus
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.models import DBTaskResult, get_date_max

from accounts_app.background.models import WorkerHeartbeat

logger = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{get_random_string(8)}"[-64:]


def beat(worker_id: str) -> None:
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id, defaults={"seen_at": timezone.now()}
    )


def requeue_orphans(now: datetime | None = None) -> list[str]:
    """Put back in the queue the running tasks of workers silent for too long."""
    now = now or timezone.now()
    lapsed = now - timedelta(seconds=settings.TASKS_WORKER_TIMEOUT)
    alive = set(
        WorkerHeartbeat.objects.filter(seen_at__gte=lapsed).values_list("worker_id", flat=True)
    )
    requeued = []
    running = DBTaskResult.objects.filter(
        status=TaskResultStatus.RUNNING, started_at__lt=lapsed
    ).values_list("id", "worker_ids", "started_at")
    for task_id, worker_ids, started_at in running:
        if worker_ids and worker_ids[-1] in alive:
            continue
        handed_on = DBTaskResult.objects.filter(
            id=task_id, status=TaskResultStatus.RUNNING, started_at=started_at
        ).update(status=TaskResultStatus.READY)
        if handed_on:
            logger.warning("task %s: its worker %s stopped; queued again", task_id, worker_ids)
            requeued.append(str(task_id))
    # Long-dead workers' rows are of no more use.
    WorkerHeartbeat.objects.filter(seen_at__lt=now - timedelta(days=1)).delete()
    return requeued


@dataclass(frozen=True)
class QueueHealth:
    heartbeat_age: float | None  # seconds since the freshest worker heartbeat
    oldest_waiting_age: float | None  # seconds the oldest ready task has waited
    waiting: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def queue_health(now: datetime | None = None) -> QueueHealth:
    now = now or timezone.now()
    last_beat = (
        WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
    )
    ready = DBTaskResult.objects.ready()
    # A task waits from its run_after when it was deferred, else from its enqueueing.
    undeferred = ready.filter(run_after=get_date_max()).aggregate(t=Min("enqueued_at"))["t"]
    deferred = ready.exclude(run_after=get_date_max()).aggregate(t=Min("run_after"))["t"]
    waiting_since = [t for t in (undeferred, deferred) if t is not None]
    oldest_waiting = min(waiting_since) if waiting_since else None
    heartbeat_age = (now - last_beat).total_seconds() if last_beat else None
    oldest_age = max(0.0, (now - oldest_waiting).total_seconds()) if oldest_waiting else None
    problems = []
    if heartbeat_age is None:
        problems.append("no worker has ever sent a heartbeat")
    elif heartbeat_age > settings.TASKS_WORKER_TIMEOUT:
        problems.append(f"no worker heartbeat for {heartbeat_age:.0f} s")
    if oldest_age is not None and oldest_age > settings.TASKS_QUEUE_STUCK_AFTER:
        problems.append(f"the oldest waiting task has waited {oldest_age:.0f} s")
    return QueueHealth(heartbeat_age, oldest_age, ready.count(), problems)
