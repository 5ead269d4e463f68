"""Every background task. Arguments are identifiers and plain values, never a password.

Run by `manage.py run_worker` (or django-tasks-db's `db_worker`). Each task can run twice
or be killed mid-way without harm: see delivery.py, sync.py, and the workflow's own
compare-and-set transitions for expiry and reconciliation.
"""

from __future__ import annotations

from django.conf import settings
from django.tasks import TaskContext, task

from accounts_app.audit import Origin
from accounts_app.background import delivery, housekeeping, retry, sync
from accounts_app.services import workflow

# Mail before sweeps: a long sync queue must not hold a notification back.
NOTIFICATION_PRIORITY = 10


@task(takes_context=True, priority=NOTIFICATION_PRIORITY)
def send_notification(
    context: TaskContext,
    *,
    event_key: str,
    kind: str,
    request_id: int,
    recipient: str,
    extra: dict,
    attempt: int = 1,
) -> dict:
    arguments = {
        "event_key": event_key,
        "kind": kind,
        "request_id": request_id,
        "recipient": recipient,
        "extra": extra,
        "attempt": attempt,
    }
    try:
        sent = delivery.deliver(
            event_key=event_key, kind=kind, request_id=request_id, recipient=recipient, extra=extra
        )
    except Exception as error:
        retry.retry_or_dead_letter(context, error, arguments)
        raise
    return {"sent": sent}


@task()
def sync_region(*, run_id: int, region_id: str, origin: dict) -> dict:
    return sync.sync_region(
        run_id=run_id, region_id=region_id, origin=sync.origin_from_arguments(origin)
    )


@task()
def start_sync() -> dict:
    """The periodic sync: a run of every configured region."""
    run = sync.sync_start(origin=Origin.system("scheduler"))
    return {"sync_run": run.pk}


@task()
def expire_requests() -> dict:
    return {"expired": workflow.expire_requests(origin=Origin.system("scheduler"))}


@task()
def prune() -> dict:
    """Forget finished tasks and their bookkeeping older than TASKS_KEEP_DAYS."""
    return housekeeping.prune(days=settings.TASKS_KEEP_DAYS)


@task()
def reconcile_requests() -> dict:
    settled = workflow.reconcile_all(origin=Origin.system("scheduler"))
    return {"reconciled": len(settled)}
