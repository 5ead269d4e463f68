"""A fleet run of 50 instances against the simulator over a socket: how long it takes,
and whether it kept within the CreateAccount budget per second.

Run alone (``.venv/bin/python bench/bench_fleet.py``) or from ``bench/run.py``. On its own
SQLite file in a scratch directory (WAL, as `make run`), with the simulator on loopback:
50 empty instances, one fleet request submitted (pre-flight on each), approved, then run
through services.fleet.fleet_execute, as the fleet page's POST runs it. Reported: the
run's wall time, its CreateAccount calls, and the most of them in any one second against
services.fleet.CREATES_PER_SECOND (the goal: never more).
"""

from __future__ import annotations

import os
import secrets
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

FLEET_SIZE = 50
# New each run; letters of both cases, digits and "-", as the rules want.
PASSWORD = "Bench-" + secrets.token_hex(6)


@dataclass
class FleetResults:
    instances: int
    seconds: float
    creates: int
    busiest_second: int
    budget: int
    created: int

    @property
    def goal_met(self) -> bool:
        return self.created == self.instances and self.busiest_second <= self.budget

    def report(self) -> str:
        return "\n".join(
            [
                f"### A fleet run of {self.instances} instances (bench/bench_fleet.py)",
                "",
                "| figure | value |",
                "|---|---|",
                f"| wall time of the run | {self.seconds:.1f} s |",
                f"| CreateAccount calls | {self.creates} |",
                f"| accounts created | {self.created} of {self.instances} |",
                f"| most CreateAccount calls in one second | {self.busiest_second} "
                f"(budget {self.budget}/s: {'met' if self.goal_met else 'MISSED'}) |",
            ]
        )


def measure(instances: int = FLEET_SIZE) -> FleetResults:
    scratch = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{scratch / 'db.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from tests.fixtures.simulator import _start

    call_command("migrate", verbosity=0)
    simulator = _start(scratch / "simulator.json")
    try:
        return _run(simulator, instances)
    finally:
        simulator.server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _run(simulator, count: int) -> FleetResults:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from accounts_app import roles
    from accounts_app.audit import Origin
    from accounts_app.models import AccountRequest, FleetTarget, Instance
    from accounts_app.services import fleet, workflow

    settings.KVSTORE_ENDPOINT = simulator.endpoint
    settings.ALIBABA_CLOUD_ACCESS_KEY_ID = simulator.access_key_id
    settings.ALIBABA_CLOUD_ACCESS_KEY_SECRET = simulator.access_key_secret
    settings.APPROVER_WAIT_HOURS = 0
    roles.ensure_groups()
    users = get_user_model().objects
    requester = users.create_user("bench_requester", password=PASSWORD)
    requester.groups.add(Group.objects.get(name=roles.REQUESTERS))
    approver = users.create_user("bench_approver", password=PASSWORD)
    approver.groups.add(Group.objects.get(name=roles.APPROVERS))
    rows = []
    for number in range(count):
        instance_id = f"r-bp1fleet{number:06d}"
        simulator.add_instance(InstanceId=instance_id, RegionId="cn-hangzhou", EngineVersion="7.0")
        rows.append(
            Instance.objects.create(
                instance_id=instance_id,
                region_id="cn-hangzhou",
                engine_version="7.0",
                architecture_type="standard",
                status="Normal",
                account_count=0,
                synced_at=timezone.now(),
            )
        )
    row = fleet.fleet_submit(
        requester=requester,
        instances=rows,
        account_name="bench_fleet",
        account_privilege="RoleReadOnly",
        account_description="",
        account_type="Normal",
        justification="Benchmark of a fleet run.",
        origin=Origin.system("bench"),
    )
    workflow.request_approve(
        request_id=row.pk, approver=approver, comment="", origin=Origin.system("bench")
    )
    simulator.clear_calls()
    started = time.perf_counter()
    fleet.fleet_execute(
        request_id=row.pk,
        user=requester,
        password_for=lambda target: PASSWORD,
        origin=Origin.system("bench"),
    )
    seconds = time.perf_counter() - started
    creates = simulator.calls("CreateAccount")
    per_second = Counter(
        datetime.fromisoformat(call["time"]).replace(microsecond=0) for call in creates
    )
    done = FleetTarget.objects.filter(request=row, status=FleetTarget.Status.DONE).count()
    assert AccountRequest.objects.get(pk=row.pk).status == AccountRequest.Status.CREATED
    return FleetResults(
        instances=count,
        seconds=seconds,
        creates=len(creates),
        busiest_second=max(per_second.values(), default=0),
        budget=fleet.CREATES_PER_SECOND,
        created=done,
    )


def main() -> None:
    results = measure()
    print(results.report())
    sys.exit(0 if results.goal_met else 1)


if __name__ == "__main__":
    main()
