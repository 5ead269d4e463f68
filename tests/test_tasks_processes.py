"""The task engine across processes, on one PostgreSQL: what the issue's "done when" asks.

- Two web servers (gunicorn) and two workers (`manage.py run_worker`): many requests
  submitted and approved at once over both servers give exactly one mail per event and
  recipient, received by a real SMTP server, and every task ran.
- A worker killed (SIGKILL) in the middle of a sync of 5,000 instances leaves the previous
  inventory; the other worker takes the task over and completes the sync.
- Two schedulers running at once enqueue each periodic job once per period.

Everything listens on loopback; every wait is bounded.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from email import message_from_string
from email.header import decode_header, make_header

import pytest
import requests
from django.db import connection
from django.tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from accounts_app.background.models import NotificationDelivery, PeriodicRun, SyncRun
from accounts_app.models import AccountRequest, Instance
from tests.conftest import empty_instance
from tests.fixtures.processes import ManageProcess, process_env, wait_for, worker
from tests.fixtures.simulator import _start
from tests.fixtures.smtp_sink import SmtpSink
from tests.test_reliability import AppServer, browser_for, post

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# The figure; TASKS_TEST_REQUESTS makes a quicker run on a laptop.
REQUESTS = int(os.environ.get("TASKS_TEST_REQUESTS", "200"))
# Pending requests count against an instance's 18 accounts: spread them.
REQUESTS_PER_INSTANCE = 10
SYNC_INSTANCES = 5000
FAST_WORKERS = {
    "TASKS_HEARTBEAT_SECONDS": "0.5",
    "TASKS_WORKER_TIMEOUT": "3",
    # Periodic jobs off: only the tasks under test run.
    "SCHEDULE_SYNC_SECONDS": "0",
    "SCHEDULE_EXPIRE_SECONDS": "0",
    "SCHEDULE_RECONCILE_SECONDS": "0",
    "SCHEDULE_PRUNE_SECONDS": "0",
    "SCHEDULE_CHECKPOINT_SECONDS": "0",
    "SCHEDULE_SWEEP_SECONDS": "0",
    "SCHEDULE_ACCOUNT_EXPIRY_SECONDS": "0",
}


@pytest.fixture
def on_postgres(db):
    if connection.vendor != "postgresql":
        pytest.skip("workers on several processes need one PostgreSQL (CI runs it)")


@pytest.fixture
def simulator(tmp_path):
    handle = _start(tmp_path / "simulator.json")
    try:
        yield handle
    finally:
        handle.server.stop()


@pytest.fixture
def smtp():
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


def simulator_env(simulator) -> dict[str, str]:
    return {
        "KVSTORE_ENDPOINT": simulator.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": simulator.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": simulator.access_key_secret,
        "KVSTORE_REGIONS": "cn-hangzhou,cn-shanghai",
    }


class Stack:
    """Processes started by a test, all stopped at its end whatever happens."""

    def __init__(self) -> None:
        self.processes: list = []

    def add(self, process):
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture
def stack():
    started = Stack()
    try:
        yield started
    finally:
        started.stop()


def tasks_left() -> int:
    return DBTaskResult.objects.filter(
        status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING]
    ).count()


def test_many_requests_on_two_servers_and_two_workers_mail_once_per_event(
    on_postgres, simulator, smtp, stack, make_user, tmp_path
):
    people = {
        "alice": make_user("alice", "Requesters"),
        "bob": make_user("bob", "Approvers"),
        "erin": make_user("erin", "Approvers"),
    }
    for name, user in people.items():
        user.email = f"{name}@example.com"
        user.save()
    instances = [
        empty_instance(simulator, f"r-bp1task{number:04d}")
        for number in range(-(-REQUESTS // REQUESTS_PER_INSTANCE))
    ]
    env = process_env(**simulator_env(simulator), **FAST_WORKERS, EMAIL_URL=smtp.url)
    servers = [stack.add(AppServer(name, env, tmp_path)) for name in ("web-a", "web-b")]
    workers = [stack.add(worker(name, env, tmp_path)) for name in ("worker-a", "worker-b")]
    for server in servers:
        server.wait_until_ready()
    alice, bob = browser_for(people["alice"]), browser_for(people["bob"])

    def submit(number: int) -> int:
        server = servers[number % 2]
        response = post(
            alice,
            f"{server.url}/requests/new/",
            {
                "instance_id": instances[number // REQUESTS_PER_INSTANCE].instance_id,
                "account_name": f"task{number}",
                "account_privilege": "RoleReadOnly",
                "account_description": "tasks",
                "account_type": "Normal",
                "justification": "many at once",
            },
        )
        assert response.status_code == 302, (response.status_code, response.text[-2000:])
        return int(re.search(r"/requests/(\d+)/", response.headers["Location"]).group(1))

    def approve(pk: int) -> None:
        response = post(bob, f"{servers[pk % 2].url}/requests/{pk}/approve/", {"comment": "ok"})
        assert response.status_code == 302, response.status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        submitted = list(pool.map(submit, range(REQUESTS)))
        list(pool.map(approve, submitted))
    posted = time.monotonic() - started
    assert AccountRequest.objects.filter(status=AccountRequest.Status.APPROVED).count() == REQUESTS

    # Each request: "submitted" to both approvers but never its requester, then
    # "decided" to its requester.
    expected = {
        (recipient, kind, pk)
        for pk in submitted
        for recipient, kind in [
            ("bob@example.com", "submitted"),
            ("erin@example.com", "submitted"),
            ("alice@example.com", "decided"),
        ]
    }
    wait_for(
        lambda: len(smtp.received()) >= len(expected) and not tasks_left(),
        180,
        f"{len(expected)} mails ({len(smtp.received())} so far)",
        *workers,
    )
    time.sleep(1)  # nothing more arrives: a duplicate would come now
    received = Counter(
        (message.recipients[0], kind_of(message.data), request_of(message.data))
        for message in smtp.received()
    )
    assert all(message.recipients.__len__() == 1 for message in smtp.received())
    assert set(received) == expected
    duplicates = {key: count for key, count in received.items() if count > 1}
    assert duplicates == {}
    # No task lost or failed, and both workers did some of the work: one task per mail,
    # and one per transition (submitted, decided) that the worker turned into them.
    statuses = Counter(DBTaskResult.objects.values_list("status", flat=True))
    assert statuses == {TaskResultStatus.SUCCESSFUL: len(expected) + 2 * REQUESTS}
    assert NotificationDelivery.objects.filter(sent_at__isnull=False).count() == len(expected)
    ran_on = Counter(
        w for ids in DBTaskResult.objects.values_list("worker_ids", flat=True) for w in ids
    )
    assert len(ran_on) == 2, ran_on
    print(f"{REQUESTS} submitted and approved over two servers in {posted:.1f} s")


def kind_of(mail_text: str) -> str:
    subject = str(make_header(decode_header(message_from_string(mail_text)["Subject"])))
    return "submitted" if subject.endswith("needs approval") else "decided"


def request_of(mail_text: str) -> int:
    return int(re.search(r"/requests/(\d+)/", mail_text).group(1))


def test_a_worker_killed_mid_sync_leaves_the_inventory_and_the_other_completes_it(
    on_postgres, simulator, stack, make_user, tmp_path, settings
):
    settings.KVSTORE_ENDPOINT = simulator.endpoint
    settings.ALIBABA_CLOUD_ACCESS_KEY_ID = simulator.access_key_id
    settings.ALIBABA_CLOUD_ACCESS_KEY_SECRET = simulator.access_key_secret
    settings.KVSTORE_REGIONS = ["cn-hangzhou", "cn-shanghai"]
    from accounts_app.audit import Origin
    from accounts_app.services.inventory import sync_instances

    assert sync_instances(origin=Origin.system("test")).ok  # the previous inventory
    before = sorted(Instance.objects.values_list("instance_id", "synced_at", "is_gone"))
    add_instances(simulator, SYNC_INSTANCES)
    env = process_env(**simulator_env(simulator), **FAST_WORKERS)
    server = stack.add(AppServer("web", env, tmp_path))
    first = stack.add(worker("worker-first", env, tmp_path))
    server.wait_until_ready()

    staff = browser_for(make_user("root", superuser=True))
    started = time.monotonic()
    response = post(staff, f"{server.url}/instances/sync/", {})
    assert response.status_code == 302
    assert time.monotonic() - started < 5  # it returns before syncing
    run = SyncRun.objects.get()

    # The page shows the instances described so far, before any region is done; the
    # worker is killed once it is well into the first region's instances.
    seen = re.compile(r"Sync in progress: 0 of 2 regions done, (\d+) instances seen")

    def under_way() -> bool:
        page = requests.get(
            f"{server.url}/instances/sync/progress/", cookies=staff.cookies, timeout=10
        ).text
        match = seen.search(page)
        return bool(match) and int(match.group(1)) > 800

    wait_for(under_way, 120, "the sync's progress", first)
    first.kill()
    calls_at_kill = len(simulator.calls("DescribeAccounts"))
    run.refresh_from_db()
    assert run.status == SyncRun.Status.RUNNING
    assert sorted(Instance.objects.values_list("instance_id", "synced_at", "is_gone")) == before
    stuck = DBTaskResult.objects.get(status=TaskResultStatus.RUNNING)
    assert stuck.worker_ids == [first_worker_id(first)]

    second = stack.add(worker("worker-second", env, tmp_path))
    wait_for(
        lambda: SyncRun.objects.get(pk=run.pk).status == SyncRun.Status.DONE,
        300,
        "the sync to complete on the second worker",
        second,
    )
    run.refresh_from_db()
    total = SYNC_INSTANCES + len(before)
    assert run.instances_seen == total and run.failures == {}
    assert Instance.objects.filter(is_gone=False).count() == total
    assert not Instance.objects.filter(is_gone=True).exists()
    stuck.refresh_from_db()
    assert stuck.status == TaskResultStatus.SUCCESSFUL
    assert stuck.worker_ids[0] == first_worker_id(first) and len(stuck.worker_ids) == 2
    assert len(simulator.calls("DescribeAccounts")) >= calls_at_kill + SYNC_INSTANCES // 2
    progress = requests.get(
        f"{server.url}/instances/sync/progress/",
        cookies=staff.cookies,
        timeout=10,
    ).text
    assert f"Last sync finished: {total} instances, {SYNC_INSTANCES} new" in progress


def first_worker_id(process: ManageProcess) -> str:
    return re.search(r"worker (\S+) started", process.log.read_text()).group(1)


def add_instances(simulator, count: int) -> None:
    """`count` instances over both regions, written to the simulator's state once."""
    store = simulator.simulator.store
    path, store.path = store.path, None  # one save at the end, not one per instance
    try:
        for number in range(count):
            region = "cn-hangzhou" if number % 2 else "cn-shanghai"
            simulator.add_instance(InstanceId=f"r-bp1many{number:05d}", RegionId=region)
    finally:
        store.path = path
    store.save()


def test_two_schedulers_enqueue_each_job_once_per_period(on_postgres, stack, tmp_path):
    intervals = {"sync": 2, "expire": 1, "reconcile": 3}
    env = process_env(
        SCHEDULE_SYNC_SECONDS=str(intervals["sync"]),
        SCHEDULE_EXPIRE_SECONDS=str(intervals["expire"]),
        SCHEDULE_RECONCILE_SECONDS=str(intervals["reconcile"]),
        SCHEDULE_PRUNE_SECONDS="0",
        SCHEDULE_CHECKPOINT_SECONDS="0",
        SCHEDULE_SWEEP_SECONDS="0",
        SCHEDULE_ACCOUNT_EXPIRY_SECONDS="0",
    )
    command = ["run_scheduler", "--tick", "0.05", "--duration", "7"]
    schedulers = [
        stack.add(ManageProcess(name, command, env, tmp_path)) for name in ("sched-a", "sched-b")
    ]
    for scheduler in schedulers:
        scheduler.process.wait(timeout=60)
        assert scheduler.process.returncode == 0, scheduler.output()

    enqueued = Counter()
    for scheduler in schedulers:
        enqueued.update(re.findall(r"enqueued (\w+)", scheduler.log.read_text()))
    runs = Counter(PeriodicRun.objects.values_list("job", flat=True))
    tasks = Counter(
        path.rsplit(".", 1)[1] for path in DBTaskResult.objects.values_list("task_path", flat=True)
    )
    # One enqueue per job and period, over the 6 to 8 periods of the fastest job.
    assert runs == enqueued
    assert tasks == {
        "start_sync": runs["sync"],
        "expire_requests": runs["expire"],
        "reconcile_requests": runs["reconcile"],
    }
    for job, interval in intervals.items():
        periods = sorted(PeriodicRun.objects.filter(job=job).values_list("period", flat=True))
        assert periods == list(range(periods[0], periods[0] + len(periods)))
        assert 7 / interval - 1 <= len(periods) <= 7 / interval + 2, (job, periods)
    # Both schedulers were in the race, and neither enqueued what the other had.
    per_scheduler = [
        len(re.findall(r"enqueued", scheduler.log.read_text())) for scheduler in schedulers
    ]
    assert sum(per_scheduler) == sum(runs.values())
