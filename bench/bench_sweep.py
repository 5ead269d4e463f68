"""The account sweep of 5,000 instances against the simulator over a socket: how long it
takes, how many DescribeAccounts calls a second, and how many queries per instance.

Run alone (``.venv/bin/python bench/bench_sweep.py [--instances N | --quick]``) or from
``bench/run.py``. On its own SQLite file in a scratch directory, with the simulator on
loopback (its state in memory: 5,000 instances would make every write of a state file
slow). Each instance has a built-in account and one the dashboard created (a done
request); one in ten also has one made outside the dashboard (drift).

Measured, unpaced (``pause=0``: the work itself): the first sweep (every account new,
the drift recorded and told) and the next one (nothing new). Then a paced sweep of
PACED_SAMPLE instances at the shipped pause (services.drift.DEFAULT_PAUSE), whose busiest
second is the goal: never more DescribeAccounts calls in one second than the pause
allows. The time a paced sweep of all the instances takes is the pauses plus the work.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.goals import SWEEP_MAX_QUERIES_PER_INSTANCE  # noqa: E402

SWEEP_SIZE = 5_000
QUICK_SIZE = 200
PACED_SAMPLE = 60
UNMANAGED_EVERY = 10


@dataclass
class Sweep:
    seconds: float
    calls: int
    queries: int
    new_drift: int

    def per_instance(self, instances: int) -> tuple[float, float]:
        return self.seconds / instances * 1000, self.queries / instances


@dataclass
class SweepResults:
    instances: int
    first: Sweep
    next: Sweep
    paced_instances: int
    paced_busiest_second: int
    pause: float
    summary_mails: int
    recipients: int

    @property
    def budget(self) -> int:
        return round(1 / self.pause)

    @property
    def goal_met(self) -> bool:
        expected_drift = -(-self.instances // UNMANAGED_EVERY)
        most_queries = max(s.per_instance(self.instances)[1] for s in (self.first, self.next))
        return (
            self.paced_busiest_second <= self.budget
            and most_queries <= SWEEP_MAX_QUERIES_PER_INSTANCE
            and self.first.new_drift == expected_drift
            and self.next.new_drift == 0
            and self.summary_mails == self.recipients
        )

    def report(self) -> str:
        rows = []
        for label, sweep in (("first sweep (all new)", self.first), ("next sweep", self.next)):
            ms, queries = sweep.per_instance(self.instances)
            rows.append(
                f"| {label} | {sweep.seconds:.1f} s | {sweep.calls / sweep.seconds:.0f} "
                f"| {ms:.1f} ms | {queries:.1f} | {sweep.new_drift} |"
            )
        paced = self.instances * self.pause + self.next.seconds
        return "\n".join(
            [
                f"### The account sweep of {self.instances:,} instances (bench/bench_sweep.py)",
                "",
                "Unpaced (`pause=0`), the work itself:",
                "",
                "| sweep | wall time | DescribeAccounts/s | per instance "
                f"| queries/instance (goal ≤ {SWEEP_MAX_QUERIES_PER_INSTANCE}) | new drift |",
                "|---|---|---|---|---|---|",
                *rows,
                "",
                f"Paced as shipped ({self.pause} s between calls): the busiest second of a "
                f"sweep of {self.paced_instances} instances made {self.paced_busiest_second} "
                f"calls (budget {self.budget}/s: "
                f"{'met' if self.paced_busiest_second <= self.budget else 'MISSED'}); "
                f"all {self.instances:,} instances take about {paced / 60:.1f} minutes. "
                f"The first sweep told its drift in {self.summary_mails} mail(s) for "
                f"{self.recipients} recipient(s): one summary each.",
            ]
        )


def measure(instances: int = SWEEP_SIZE) -> SweepResults:
    scratch = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{scratch / 'db.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from tests.fixtures.simulator import _start

    call_command("migrate", verbosity=0)
    simulator = _start(None)  # in memory
    try:
        return _run(simulator, instances)
    finally:
        simulator.server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _seed(simulator, count: int):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from accounts_app import roles
    from accounts_app.models import AccountRequest, Instance

    roles.ensure_groups()
    users = get_user_model().objects
    requester = users.create_user("bench_requester", email="requester@bench.example")
    requester.groups.add(Group.objects.get(name=roles.REQUESTERS))
    for name in ("bench_approver", "bench_auditor"):
        user = users.create_user(name, email=f"{name}@bench.example")
        group = roles.APPROVERS if name == "bench_approver" else roles.AUDITORS
        user.groups.add(Group.objects.get(name=group))
    now = timezone.now()
    ids = [f"r-bp1sweep{number:06d}" for number in range(count)]
    for number, instance_id in enumerate(ids):
        simulator.add_instance(InstanceId=instance_id, RegionId="cn-hangzhou", EngineVersion="7.0")
        simulator.add_account(instance_id, instance_id, account_type="Super")
        simulator.add_account(instance_id, "app_rw", privilege="RoleReadWrite")
        if number % UNMANAGED_EVERY == 0:
            simulator.add_account(instance_id, "console_made", privilege="RoleReadOnly")
    Instance.objects.bulk_create(
        Instance(
            instance_id=instance_id,
            region_id="cn-hangzhou",
            engine_version="7.0",
            architecture_type="standard",
            status="Normal",
            account_count=1,
            synced_at=now,
        )
        for instance_id in ids
    )
    AccountRequest.objects.bulk_create(
        AccountRequest(
            requester=requester,
            instance=instance,
            account_name="app_rw",
            account_privilege="RoleReadWrite",
            justification="Benchmark of the sweep.",
            approvals_required=1,
            status=AccountRequest.Status.CREATED,
            approved_at=now,
            finished_at=now,
        )
        for instance in Instance.objects.all()
    )


def _sweep(simulator, **options) -> Sweep:
    from django.db import connection

    from accounts_app.audit import Origin
    from accounts_app.services import drift

    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    simulator.clear_calls()
    with connection.execute_wrapper(count):
        started = time.perf_counter()
        report = drift.sweep_accounts(origin=Origin.system("bench"), **options)
        seconds = time.perf_counter() - started
    assert report.failures == 0, report.failures
    return Sweep(seconds, len(simulator.calls("DescribeAccounts")), queries, report.new_drift)


def _run(simulator, count: int) -> SweepResults:
    from django.conf import settings
    from django.core import mail

    from accounts_app.models import Instance
    from accounts_app.services import drift

    settings.KVSTORE_ENDPOINT = simulator.endpoint
    settings.ALIBABA_CLOUD_ACCESS_KEY_ID = simulator.access_key_id
    settings.ALIBABA_CLOUD_ACCESS_KEY_SECRET = simulator.access_key_secret
    # The summary goes out as mail tasks; run inline, into a list, to count them.
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    mail.outbox = []
    _seed(simulator, count)

    first = _sweep(simulator, pause=0)
    summary_mails = len([m for m in mail.outbox if "drifted" in m.subject])
    second = _sweep(simulator, pause=0)
    sample = list(Instance.objects.order_by("pk")[:PACED_SAMPLE])
    simulator.clear_calls()
    drift.sweep_accounts(instances=sample, pause=drift.DEFAULT_PAUSE)
    per_second = Counter(
        datetime.fromisoformat(call["time"]).replace(microsecond=0)
        for call in simulator.calls("DescribeAccounts")
    )
    return SweepResults(
        instances=count,
        first=first,
        next=second,
        paced_instances=len(sample),
        paced_busiest_second=max(per_second.values(), default=0),
        pause=drift.DEFAULT_PAUSE,
        summary_mails=summary_mails,
        recipients=2,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=None, help=f"({SWEEP_SIZE:,})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SIZE} instances")
    args = parser.parse_args()
    size = args.instances or (QUICK_SIZE if args.quick else SWEEP_SIZE)
    results = measure(size)
    print(results.report())
    sys.exit(0 if results.goal_met else 1)


if __name__ == "__main__":
    main()
