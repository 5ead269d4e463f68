"""Time-boxed accounts with two real worker processes on one PostgreSQL: the expiry job
runs on both at once, and each account past its expiry is deleted by exactly one
DeleteAccount at the simulator; each reminder reaches its requester once."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from email import message_from_string
from email.header import decode_header, make_header

import pytest
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts_app.background import tasks
from accounts_app.background.models import NotificationDelivery
from accounts_app.models import AccountRequest
from tests.builders import request_row
from tests.conftest import empty_instance
from tests.fixtures.processes import process_env, wait_for, worker
from tests.test_tasks import DATABASE_BACKEND
from tests.test_tasks_processes import (  # noqa: F401  (fixtures)
    FAST_WORKERS,
    on_postgres,
    simulator,
    simulator_env,
    smtp,
    stack,
    tasks_left,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

Status = AccountRequest.Status
INSTANCES = 4
ACCOUNTS_PER_INSTANCE = 3
RUNS = 6  # expiry runs queued at once, taken by both workers


def test_two_workers_expire_each_account_with_exactly_one_delete_and_remind_once(
    on_postgres,  # noqa: F811
    simulator,  # noqa: F811
    smtp,  # noqa: F811
    stack,  # noqa: F811
    make_user,
    tmp_path,
    settings,
):
    settings.TASKS = DATABASE_BACKEND  # this process only enqueues; the workers run
    alice = make_user("alice", "Requesters")
    alice.email = "alice@example.com"
    alice.save()
    now = timezone.now()
    due, soon = [], []
    for number in range(INSTANCES):
        instance = empty_instance(simulator, f"r-bp1expire{number:03d}")
        for slot in range(ACCOUNTS_PER_INSTANCE):
            name = f"tb_{number}_{slot}"
            simulator.add_account(instance.instance_id, name)
            due.append(
                request_row(
                    alice, instance, name, status=Status.CREATED, expires_at=now - timedelta(1)
                )
            )
        # One more per instance that expires in twelve hours: reminded, not deleted.
        simulator.add_account(instance.instance_id, f"tb_{number}_soon")
        soon.append(
            request_row(
                alice,
                instance,
                f"tb_{number}_soon",
                status=Status.CREATED,
                expires_at=now + timedelta(hours=12),
            )
        )
    # Several runs queued before any worker starts: both workers take some at once.
    for _ in range(RUNS):
        tasks.expire_accounts.enqueue()
    env = process_env(**simulator_env(simulator), **FAST_WORKERS, EMAIL_URL=smtp.url)
    workers = [stack.add(worker(name, env, tmp_path)) for name in ("worker-a", "worker-b")]

    def settled() -> bool:
        done = AccountRequest.objects.filter(
            pk__in=[r.pk for r in due], expiry_done_at__isnull=False
        ).count()
        # A mail per deletion ("finished", to the requester) and one per reminder.
        mails = len(smtp.received()) >= len(due) + len(soon)
        return done == len(due) and not tasks_left() and mails

    wait_for(settled, 180, "every expiry carried out and the reminders sent", *workers)
    # Runs that found an account still settling leave it for the next: none here, but a
    # straggler would be a failure of the assertions below, not a flake.
    deletes = Counter(
        (call["instance_id"], call["params"]["AccountName"])
        for call in simulator.calls("DeleteAccount")
    )
    assert deletes == {(r.instance.instance_id, r.account_name): 1 for r in due}
    for number in range(INSTANCES):
        assert simulator.account_names(f"r-bp1expire{number:03d}") == [f"tb_{number}_soon"]
    # Each deletion is one request through the lifecycle's delete path, done.
    deletions = AccountRequest.objects.filter(about__in=due, kind=AccountRequest.Kind.DELETE)
    assert Counter(deletions.values_list("status", flat=True)) == {Status.CREATED: len(due)}
    # Every run succeeded, and both workers ran some.
    ran = DBTaskResult.objects.filter(task_path__endswith="expire_accounts")
    assert ran.filter(status=TaskResultStatus.SUCCESSFUL).count() == RUNS
    assert len({result.worker_ids[-1] for result in ran}) == 2
    # Reminders: one mail per account expiring soon, whatever the runs.
    time.sleep(1)  # nothing more arrives: a duplicate would come now
    subjects = [subject_of(m.data) for m in smtp.received()]
    reminders = Counter(s for s in subjects if "expires within" in s)
    assert sorted(reminders.values()) == [1] * len(soon)
    assert len(smtp.received()) == len(due) + len(soon)
    keys = NotificationDelivery.objects.filter(event_key__startswith="expiry_reminder:")
    assert keys.filter(sent_at__isnull=False).count() == len(soon)


def subject_of(mail_text: str) -> str:
    return str(make_header(decode_header(message_from_string(mail_text)["Subject"])))
