"""Every background task. Arguments are identifiers and plain values, never a password.

Run by `manage.py run_worker` (or django-tasks-db's `db_worker`). Each task can run twice
or be killed mid-way without harm: see delivery.py, sync.py, and the workflow's own
compare-and-set transitions for expiry and reconciliation.
"""

from __future__ import annotations

from django.conf import settings
from django.tasks import task

from accounts_app.audit import Origin
from accounts_app.background import housekeeping, sync
from accounts_app.services import audit_checkpoints, drift, expiry, fleet, workflow


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
    origin = Origin.system("scheduler")
    settled = workflow.reconcile_all(origin=origin) + fleet.fleet_reconcile_stuck(origin=origin)
    return {"reconciled": len(settled)}


@task()
def publish_audit_checkpoint() -> dict:
    """The audit chain's head, to where the database's owner cannot rewrite it."""
    checkpoint = audit_checkpoints.checkpoint_publish(origin=Origin.system("scheduler"))
    return {"seq": checkpoint.seq}


@task()
def sweep_accounts() -> dict:
    """Every instance's accounts, compared with what the dashboard did (the drift page)."""
    report = drift.sweep_accounts(origin=Origin.system("scheduler"))
    return {"instances": report.instances, "failures": report.failures, "drift": report.new_drift}


@task()
def expire_accounts() -> dict:
    """Time-boxed accounts: delete those whose expiry came (again, those that failed), and
    send the reminders due."""
    report = expiry.expire_accounts(origin=Origin.system("scheduler"))
    return {"deleted": report.deleted, "overdue": report.overdue, "reminders": report.reminders}
