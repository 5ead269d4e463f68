"""The task engine in one process: the real database backend and django-tasks-db's
worker code (`db_worker --batch`), on SQLite or PostgreSQL.

Multi-process behaviour (two web servers, two workers, a killed worker, two schedulers)
is in tests/test_tasks_processes.py.
"""

from __future__ import annotations

import smtplib
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.core.management import call_command
from django.tasks import TaskResultStatus
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

from accounts_app import notifications
from accounts_app.audit import Origin
from accounts_app.background import delivery, scheduler, tasks, workers
from accounts_app.background.models import (
    NotificationDelivery,
    PeriodicRun,
    SyncRun,
    TaskFailure,
    WorkerHeartbeat,
)
from accounts_app.chat.models import ChatNonce
from accounts_app.models import AccountRequest, AuditEvent, Instance
from tests.builders import submitted_request

DATABASE_BACKEND = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
NOTIFICATION = "accounts_app.background.delivery.send_notification"
# One per transition: the worker turns it into one NOTIFICATION per recipient.
TRANSITION = "accounts_app.notifications.send_transition_notifications"


@pytest.fixture
def queue(settings, db):
    """Tasks go to the database queue, as in production; run_worker() runs them."""
    settings.TASKS = DATABASE_BACKEND
    return settings


def run_worker() -> None:
    """django-tasks-db's worker, until the queue has nothing ready.

    In the test's transaction: the worker's close_old_connections() would close the
    connection, since it is not in autocommit (a worker process is), so it is skipped.
    """
    with mock.patch.object(db_worker, "close_old_connections"):
        call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def people(requester, approver):
    requester.email = "alice@example.com"
    requester.save()
    approver.email = "bob@example.com"
    approver.save()
    return requester, approver


# --- Notifications ---------------------------------------------------------------------


def test_approving_enqueues_the_mail_and_sends_none_in_the_request(
    queue, estate, people, django_capture_on_commit_callbacks
):
    requester, approver = people
    account_request = submitted_request(requester)
    run_worker()  # the "submitted" mail
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(approver).post(
            reverse("request_approve", args=[account_request.pk]), {"comment": "ok"}
        )

    assert response.status_code == 302
    assert mail.outbox == []
    waiting = DBTaskResult.objects.filter(status=TaskResultStatus.READY)
    assert [t.task_path for t in waiting] == [TRANSITION]
    assert waiting[0].args_kwargs["kwargs"]["recipients"] == ["alice@example.com"]
    run_worker()
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    assert "approved" in mail.outbox[0].body.lower()


def test_a_notification_enqueued_twice_is_sent_once(
    queue, estate, people, django_capture_on_commit_callbacks
):
    requester, _ = people
    with django_capture_on_commit_callbacks(execute=True):
        account_request = submitted_request(requester)
    submitted = DBTaskResult.objects.get(task_path=TRANSITION)
    # The same event's task again, as after a lost acknowledgement: two mail tasks.
    notifications.send_transition_notifications.enqueue(**submitted.args_kwargs["kwargs"])
    mail.outbox.clear()

    run_worker()

    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    assert f"/requests/{account_request.pk}/" in mail.outbox[0].body
    sends = DBTaskResult.objects.filter(task_path=NOTIFICATION)
    assert sorted(t.return_value["sent"] for t in sends) == [False, True]
    delivery_row = NotificationDelivery.objects.get()
    assert delivery_row.recipient == "bob@example.com" and delivery_row.sent_at


def test_a_delivery_claimed_by_a_live_run_is_not_sent_again(estate, people):
    requester, _ = people
    account_request = submitted_request(requester)
    NotificationDelivery.objects.create(
        event_key="submitted:x", recipient="bob@example.com", claimed_at=timezone.now()
    )
    with pytest.raises(delivery.DeliveryInProgress):
        delivery.deliver(
            event_key="submitted:x",
            kind="submitted",
            request_id=account_request.pk,
            recipient="bob@example.com",
            extra={},
        )
    assert mail.outbox == []


def test_a_failing_mail_server_is_retried_later_with_backoff(
    queue, estate, people, monkeypatch, django_capture_on_commit_callbacks
):
    queue.TASKS_RETRY_BACKOFF = 10
    requester, _ = people
    monkeypatch.setattr(delivery, "send_mail", refuse_mail)
    with django_capture_on_commit_callbacks(execute=True):
        submitted_request(requester)

    before = timezone.now()
    run_worker()

    first, second = DBTaskResult.objects.filter(task_path=NOTIFICATION).order_by("enqueued_at")
    assert first.status == TaskResultStatus.FAILED
    assert "SMTPServerDisconnected" in first.exception_class_path
    assert second.status == TaskResultStatus.READY
    assert second.args_kwargs["kwargs"]["attempt"] == 2
    assert before + timedelta(seconds=9) < second.run_after < before + timedelta(seconds=20)
    assert not TaskFailure.objects.exists()
    assert NotificationDelivery.objects.get().claimed_at is None


def test_after_the_last_try_the_task_is_dead_lettered_and_staff_can_retry_it(
    queue, estate, people, monkeypatch, make_user, django_capture_on_commit_callbacks
):
    queue.TASKS_RETRY_BACKOFF = 0
    queue.TASKS_MAX_ATTEMPTS = 3
    requester, _ = people
    monkeypatch.setattr(delivery, "send_mail", refuse_mail)
    with django_capture_on_commit_callbacks(execute=True):
        submitted_request(requester)

    run_worker()

    tries = DBTaskResult.objects.filter(task_path=NOTIFICATION)
    assert [t.status for t in tries] == [TaskResultStatus.FAILED] * 3
    failure = TaskFailure.objects.get()
    assert failure.attempts == 3
    assert "SMTPServerDisconnected: the mail server hung up" in failure.error
    assert failure.arguments["recipient"] == "bob@example.com"
    assert "attempt" not in failure.arguments
    assert mail.outbox == []

    monkeypatch.undo()
    staff = make_user("root", superuser=True)
    admin = signed_in(staff)
    listing = admin.get(reverse("admin:accounts_app_taskfailure_changelist"))
    assert "SMTPServerDisconnected" in listing.content.decode()
    response = admin.post(
        reverse("admin:accounts_app_taskfailure_changelist"),
        {"action": "retry_failures", "_selected_action": [failure.pk]},
        follow=True,
    )
    assert "1 task queued again." in response.content.decode()
    run_worker()
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    failure.refresh_from_db()
    assert failure.retried_at is not None


def test_staff_can_retry_a_failed_task_from_the_task_list(queue, make_user, estate, people):
    requester, _ = people
    account_request = submitted_request(requester)
    run_worker()  # its own "submitted" mail
    failed = DBTaskResult.objects.create(
        task_path=NOTIFICATION,
        args_kwargs={
            "args": [],
            "kwargs": {
                "event_key": "submitted:manual",
                "kind": "submitted",
                "request_id": account_request.pk,
                "recipient": "bob@example.com",
                "extra": {},
                "attempt": 5,
            },
        },
        backend_name="default",
        run_after=timezone.now(),
        status=TaskResultStatus.FAILED,
    )
    admin = signed_in(make_user("root", superuser=True))
    changelist = reverse("admin:django_tasks_database_dbtaskresult_changelist")
    assert "send_notification" in admin.get(changelist).content.decode()
    admin.post(changelist, {"action": "retry_tasks", "_selected_action": [failed.pk]})
    mail.outbox.clear()
    run_worker()
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]


def refuse_mail(*args, **kwargs):
    raise smtplib.SMTPServerDisconnected("the mail server hung up")


# --- Sync ---------------------------------------------------------------------------------


def test_sync_now_returns_before_syncing_and_the_page_shows_progress(
    queue, kvstore, make_user, settings
):
    settings.KVSTORE_REGIONS = ["cn-hangzhou", "cn-shanghai"]
    staff = signed_in(make_user("root", superuser=True))

    response = staff.post(reverse("instance_sync"), follow=True)

    html = response.content.decode()
    assert not Instance.objects.exists()
    assert not kvstore.calls("DescribeInstances")
    assert "Sync in progress: 0 of 2 regions done, 0 instances seen, 0 errors." in html
    poll = staff.get(reverse("sync_progress"), headers={"hx-request": "true"})
    assert 'hx-trigger="every 1s"' in poll.content.decode()
    assert "HX-Refresh" not in poll

    run_worker()

    poll = staff.get(reverse("sync_progress"), headers={"hx-request": "true"})
    progress = poll.content.decode()
    assert "Last sync finished: 10 instances, 10 new, 0 changed, 0 gone." in progress
    assert "hx-trigger" not in progress
    assert poll["HX-Refresh"] == "true"  # the list is reloaded with what was synced
    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.DONE
    assert run.regions_done == 2 and Instance.objects.count() == 10


def test_a_region_that_fails_is_shown_with_its_error(queue, kvstore, make_user, settings):
    settings.KVSTORE_REGIONS = ["cn-hangzhou", "cn-shanghai"]
    settings.KVSTORE_MAX_ATTEMPTS = 1
    kvstore.add_fault("http503", action="DescribeInstances", count=1)
    staff = signed_in(make_user("root", superuser=True))
    staff.post(reverse("instance_sync"))

    run_worker()

    progress = staff.get(reverse("sync_progress")).content.decode()
    assert "These failed and keep their previous data" in progress
    assert "cn-hangzhou: ServiceUnavailable" in progress


# Committed: the count is written from a thread of its own, on its own connection.
@pytest.mark.django_db(transaction=True)
def test_a_region_under_way_counts_the_instances_described_so_far(
    queue, kvstore, settings, monkeypatch
):
    from accounts_app.background import sync

    settings.KVSTORE_REGIONS = ["cn-hangzhou"]
    monkeypatch.setattr(sync, "LIVE_COUNT_SECONDS", 0.05)
    kvstore.add_fault("slow", action="DescribeAccounts", delay=0.3)
    run = sync.sync_start(origin=Origin.system("test"))
    counted = []
    real_record = sync._record

    def record(run_id, region_id, entry):
        # Just before the region is recorded as done: what the page showed meanwhile.
        counted.append(SyncRun.objects.get(pk=run_id).instances_seen)
        real_record(run_id, region_id, entry)

    monkeypatch.setattr(sync, "_record", record)
    run_worker()

    described = Instance.objects.filter(region_id="cn-hangzhou").count()
    assert len(counted) == 1 and 0 < counted[0] <= described
    run.refresh_from_db()
    assert run.instances_seen == described


def test_a_region_synced_twice_counts_once(queue, kvstore, settings):
    from accounts_app.audit import Origin
    from accounts_app.background.sync import sync_region, sync_start

    settings.KVSTORE_REGIONS = ["cn-hangzhou", "cn-shanghai"]
    run = sync_start(origin=Origin.system("test"))
    sync_region(run_id=run.pk, region_id="cn-hangzhou", origin=Origin.system("test"))
    sync_region(run_id=run.pk, region_id="cn-hangzhou", origin=Origin.system("test"))
    run.refresh_from_db()
    assert run.status == SyncRun.Status.RUNNING
    assert run.regions_done == 1
    assert run.instances_seen == Instance.objects.filter(region_id="cn-hangzhou").count()


# --- Workers, the queue's health, the scheduler --------------------------------------------


def test_a_dead_workers_task_goes_back_to_the_queue_and_a_live_ones_stays(queue, settings, db):
    settings.TASKS_WORKER_TIMEOUT = 30
    long_ago = timezone.now() - timedelta(minutes=5)
    WorkerHeartbeat.objects.create(worker_id="alive", seen_at=timezone.now())
    WorkerHeartbeat.objects.create(worker_id="dead", seen_at=long_ago)
    running = {}
    for worker_id in ("alive", "dead"):
        result = tasks.expire_requests.enqueue()
        DBTaskResult.objects.filter(id=result.id).update(
            status=TaskResultStatus.RUNNING, started_at=long_ago, worker_ids=[worker_id]
        )
        running[worker_id] = result.id

    requeued = workers.requeue_orphans()

    assert requeued == [str(running["dead"])]
    statuses = dict(DBTaskResult.objects.values_list("worker_ids__0", "status"))
    assert statuses == {"alive": TaskResultStatus.RUNNING, "dead": TaskResultStatus.READY}


def test_healthz_is_degraded_without_a_worker_and_when_the_queue_is_stuck(queue, client, settings):
    health = client.get(reverse("healthz")).json()
    assert health["status"] == "degraded"
    assert health["tasks"]["problems"] == ["no worker has ever sent a heartbeat"]

    workers.beat("w1")
    health = client.get(reverse("healthz")).json()
    assert health["status"] == "ok"
    assert health["tasks"]["worker_heartbeat_age"] < 5
    assert health["tasks"]["oldest_waiting_age"] is None

    settings.TASKS_QUEUE_STUCK_AFTER = 60
    old = tasks.expire_requests.enqueue()
    DBTaskResult.objects.filter(id=old.id).update(
        enqueued_at=timezone.now() - timedelta(minutes=10)
    )
    response = client.get(reverse("healthz"))
    health = response.json()
    assert response.status_code == 200
    assert health["status"] == "degraded"
    assert 590 < health["tasks"]["oldest_waiting_age"] < 700
    assert health["tasks"]["problems"][0].startswith("the oldest waiting task has waited")

    WorkerHeartbeat.objects.update(seen_at=timezone.now() - timedelta(hours=1))
    problems = client.get(reverse("healthz")).json()["tasks"]["problems"]
    assert "no worker heartbeat for 3600 s" in problems


def test_the_scheduler_enqueues_each_job_once_per_period(queue, settings):
    settings.SCHEDULE_SYNC_SECONDS = 3600
    settings.SCHEDULE_EXPIRE_SECONDS = 600
    settings.SCHEDULE_RECONCILE_SECONDS = 0  # off
    settings.SCHEDULE_PRUNE_SECONDS = 0
    settings.SCHEDULE_CHECKPOINT_SECONDS = 0
    settings.SCHEDULE_SWEEP_SECONDS = 0
    settings.SCHEDULE_ACCOUNT_EXPIRY_SECONDS = 0
    now = timezone.now().replace(minute=0, second=1)

    assert scheduler.tick(now) == ["sync", "expire"]
    assert scheduler.tick(now + timedelta(seconds=30)) == []
    assert scheduler.tick(now + timedelta(minutes=10)) == ["expire"]

    assert PeriodicRun.objects.count() == 3
    paths = sorted(DBTaskResult.objects.values_list("task_path", flat=True))
    assert paths == [
        "accounts_app.background.tasks.expire_requests",
        "accounts_app.background.tasks.expire_requests",
        "accounts_app.background.tasks.start_sync",
    ]


def test_the_audit_checkpoint_is_published_on_the_schedule(queue, people, settings, caplog):
    settings.SCHEDULE_CHECKPOINT_SECONDS = 3600
    for job in ("SYNC", "EXPIRE", "RECONCILE", "PRUNE", "SWEEP", "ACCOUNT_EXPIRY"):
        setattr(settings, f"SCHEDULE_{job}_SECONDS", 0)
    head = AuditEvent.objects.order_by("-seq").first()

    assert scheduler.tick(timezone.now()) == ["checkpoint"]
    with caplog.at_level("INFO", logger="accounts_app.audit.checkpoint"):
        run_worker()

    assert f"audit-checkpoint seq={head.seq} hash={head.hash}" in caplog.text
    published = AuditEvent.objects.order_by("-seq").first()
    assert published.action == AuditEvent.Action.CHECKPOINT_PUBLISHED


def test_expiry_and_reconciliation_run_as_tasks(queue, estate, people, settings):
    requester, _ = people
    account_request = submitted_request(requester)
    AccountRequest.objects.filter(pk=account_request.pk).update(
        created_at=timezone.now() - timedelta(days=settings.REQUEST_TTL_DAYS + 1)
    )
    tasks.expire_requests.enqueue()
    tasks.reconcile_requests.enqueue()

    run_worker()

    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.EXPIRED
    results = dict(DBTaskResult.objects.values_list("task_path", "return_value"))
    assert results["accounts_app.background.tasks.expire_requests"] == {"expired": 1}
    assert results["accounts_app.background.tasks.reconcile_requests"] == {"reconciled": 0}


def test_the_sync_progress_and_the_retry_action_speak_chinese(queue, kvstore, make_user, settings):
    settings.KVSTORE_REGIONS = ["cn-hangzhou", "cn-shanghai"]
    staff = signed_in(make_user("root", superuser=True))
    staff.post(reverse("instance_sync"))

    progress = staff.get(reverse("sync_progress"), headers={"accept-language": "zh-hans"})
    assert "正在同步：已完成 0 / 2 个地域" in progress.content.decode()
    TaskFailure.objects.create(task_id="t1", task_path=NOTIFICATION, attempts=5, error="x")
    failures = staff.get(
        reverse("admin:accounts_app_taskfailure_changelist"), headers={"accept-language": "zh-hans"}
    )
    assert "重试所选的失败任务" in failures.content.decode()


def test_pruning_forgets_what_finished_long_ago_and_keeps_the_rest(queue, settings):
    settings.TASKS_KEEP_DAYS = 14
    long_ago = timezone.now() - timedelta(days=20)
    old, recent = tasks.expire_requests.enqueue(), tasks.expire_requests.enqueue()
    run_worker()
    DBTaskResult.objects.filter(id=old.id).update(finished_at=long_ago)
    NotificationDelivery.objects.create(event_key="old", recipient="a@example.com")
    NotificationDelivery.objects.filter(event_key="old").update(created_at=long_ago)
    NotificationDelivery.objects.create(event_key="new", recipient="a@example.com")
    ChatNonce.objects.create(scope="slack", key="old")
    ChatNonce.objects.filter(key="old").update(seen_at=long_ago)
    ChatNonce.objects.create(scope="slack", key="new")

    pruned = tasks.prune.call()

    assert pruned == {
        "deliveries": 1,
        "periodic_runs": 0,
        "sync_runs": 0,
        "call_windows": 0,
        "chat_nonces": 1,
    }
    assert list(ChatNonce.objects.values_list("key", flat=True)) == ["new"]
    assert [str(pk) for pk in DBTaskResult.objects.values_list("id", flat=True)] == [recent.id]
    assert list(NotificationDelivery.objects.values_list("event_key", flat=True)) == ["new"]
