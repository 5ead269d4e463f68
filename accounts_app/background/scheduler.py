"""Periodic jobs, enqueued by the dashboard itself: one enqueue per job and period.

Time is cut into periods of each job's interval (SCHEDULE_*_SECONDS). The first
scheduler to insert the (job, period) row enqueues the job in the same transaction; any
other scheduler's insert hits the unique constraint and enqueues nothing. So every
worker can host a scheduler (run_worker does), on any number of machines.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts_app.background import tasks
from accounts_app.background.models import PeriodicRun

# Job name -> (its interval in seconds, read when the scheduler ticks; its task).
JOBS = {
    "sync": (lambda: settings.SCHEDULE_SYNC_SECONDS, tasks.start_sync),
    "expire": (lambda: settings.SCHEDULE_EXPIRE_SECONDS, tasks.expire_requests),
    "reconcile": (lambda: settings.SCHEDULE_RECONCILE_SECONDS, tasks.reconcile_requests),
    "prune": (lambda: settings.SCHEDULE_PRUNE_SECONDS, tasks.prune),
    "checkpoint": (lambda: settings.SCHEDULE_CHECKPOINT_SECONDS, tasks.publish_audit_checkpoint),
    "sweep": (lambda: settings.SCHEDULE_SWEEP_SECONDS, tasks.sweep_accounts),
    "account_expiry": (lambda: settings.SCHEDULE_ACCOUNT_EXPIRY_SECONDS, tasks.expire_accounts),
}


def tick(now: datetime | None = None) -> list[str]:
    """Enqueue every job whose current period has no run yet; returns the jobs enqueued."""
    now = now or timezone.now()
    enqueued = []
    for job, (interval_of, task) in JOBS.items():
        interval = int(interval_of())
        if interval <= 0:
            continue
        period = int(now.timestamp()) // interval
        try:
            with transaction.atomic():
                PeriodicRun.objects.create(job=job, period=period)
                task.enqueue()
        except IntegrityError:
            continue  # another scheduler got there first
        enqueued.append(job)
    return enqueued
