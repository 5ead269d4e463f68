"""The approve POST against a mail server that takes 2 s to answer: queued vs. inline.

Run alone (``.venv/bin/python bench/bench_tasks.py``) or from ``bench/run.py``. On its own
SQLite database in a scratch directory, with a local SMTP server that waits
``--mail-delay`` seconds before acknowledging each message:

- queued: the dashboard as shipped (mail is a task in django-tasks-db's queue), one
  ``run_worker`` process sending the mails;
- inline: the same code with Django's ImmediateBackend, which runs each task inside the
  request that enqueues it: the behaviour before background work (mail sent from the
  approving request), for comparison.

For each: the approve POST's p50 and p95 over one connection (gunicorn, one worker), and,
when queued, how long the worker took to deliver every mail. Goal: the queued approve's
p95 stays within its usual time (bench/goals.py), whatever the mail server does.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.goals import SLOW_MAIL_APPROVE_P95_GOAL_MS  # noqa: E402
from tests.fixtures.smtp_sink import SmtpSink  # noqa: E402

# The bench users' password, new each run.
PASSWORD = secrets.token_urlsafe(16)
QUEUED = "django_tasks_db.DatabaseBackend"
INLINE = "django.tasks.backends.immediate.ImmediateBackend"
SEED = """
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from accounts_app import roles
from accounts_app.models import AccountRequest, Instance, RoleGrant
roles.ensure_groups()
User = get_user_model()
requester = User.objects.create_user("bench_requester", "requester@example.com", "{password}")
requester.groups.add(Group.objects.get(name=roles.REQUESTERS))
approver = User.objects.create_user("bench_approver", "approver@example.com", "{password}")
approver.groups.add(Group.objects.get(name=roles.APPROVERS))
# An approver of long standing: one made today waits APPROVER_WAIT_HOURS before deciding.
RoleGrant.objects.update(granted_at=timezone.now() - timedelta(days=2))
for number in range({count}):
    instance = Instance.objects.create(
        instance_id=f"r-bp1mail{{number:06d}}", region_id="cn-hangzhou", engine_version="6.0",
        architecture_type="standard", status="Normal", account_count=0, synced_at=timezone.now(),
    )
    AccountRequest.objects.create(
        requester=requester, instance=instance, account_name=f"mail{{number}}",
        account_privilege="RoleReadOnly", justification="bench", approvals_required=1,
    )
"""


@dataclass
class Mode:
    label: str
    backend: str
    approve_ms: list[float] = field(default_factory=list)
    delivered_seconds: float | None = None

    def p(self, q: float) -> float:
        ordered = sorted(self.approve_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class TasksResults:
    mail_delay: float
    modes: list[Mode]

    @property
    def queued(self) -> Mode:
        return self.modes[0]

    @property
    def goal_met(self) -> bool:
        return self.queued.p(0.95) < SLOW_MAIL_APPROVE_P95_GOAL_MS

    def report(self) -> str:
        lines = [
            f"### Approve with a mail server that takes {self.mail_delay:g} s",
            "",
            "| Mail | approve p50 | approve p95 | all mails delivered after |",
            "|---|---:|---:|---:|",
        ]
        for mode in self.modes:
            delivered = (
                f"{mode.delivered_seconds:.1f} s" if mode.delivered_seconds is not None else "-"
            )
            lines.append(
                f"| {mode.label} | {mode.p(0.5):.0f} ms | {mode.p(0.95):.0f} ms | {delivered} |"
            )
        verdict = "met" if self.goal_met else "MISSED"
        lines += [
            "",
            f"Goal: queued approve p95 < {SLOW_MAIL_APPROVE_P95_GOAL_MS:.0f} ms: {verdict}.",
        ]
        return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def measure(*, approvals: int = 8, mail_delay: float = 2.0) -> TasksResults:
    sink = SmtpSink(delay=mail_delay).start()
    scratch = Path(tempfile.mkdtemp(prefix="bench-tasks-"))
    modes = [Mode("queued (task + worker)", QUEUED), Mode("inline (before)", INLINE)]
    try:
        for mode in modes:
            run_mode(mode, approvals, sink, scratch / mode.backend.rsplit(".", 1)[1])
    finally:
        sink.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return TasksResults(mail_delay, modes)


def run_mode(mode: Mode, approvals: int, sink: SmtpSink, scratch: Path) -> None:
    scratch.mkdir(parents=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ENV_FILE": os.devnull,
        "DATABASE_URL": f"sqlite:///{scratch / 'db.sqlite3'}",
        "SECRET_KEY": "bench-tasks-secret-key-0123456789abcdef0123456789",
        "AUDIT_HMAC_KEY": "bench-tasks-audit-key",
        "DEBUG": "false",
        "HTTPS": "false",
        "DEMO_MODE": "false",
        "EMAIL_URL": sink.url,
        "TASKS_BACKEND": mode.backend,
        "SCHEDULE_SYNC_SECONDS": "0",
        "SCHEDULE_EXPIRE_SECONDS": "0",
        "SCHEDULE_RECONCILE_SECONDS": "0",
        "SCHEDULE_PRUNE_SECONDS": "0",
        "SCHEDULE_CHECKPOINT_SECONDS": "0",
        "SCHEDULE_SWEEP_SECONDS": "0",
        "SCHEDULE_ACCOUNT_EXPIRY_SECONDS": "0",
        "TASKS_HEARTBEAT_SECONDS": "1",
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "WARNING",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    quiet = {"env": env, "check": True, "stdout": subprocess.DEVNULL, "cwd": ROOT}
    subprocess.run([*manage, "migrate", "--no-input"], **quiet)
    subprocess.run([*manage, "collectstatic", "--no-input"], **quiet)
    seed = SEED.format(count=approvals, password=PASSWORD)
    subprocess.run([*manage, "shell", "-c", seed], **quiet)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (scratch / "gunicorn.log").open("wb")
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind"]
    command += [f"127.0.0.1:{port}", "--workers", "1", "--threads", "1", "--chdir", str(ROOT)]
    children = [subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)]
    try:
        wait_until_up(f"{base}/login/")
        session = sign_in(base)
        received_before = len(sink.received())
        for pk in range(1, approvals + 1):
            path = f"/requests/{pk}/approve/"
            data = {"comment": "ok", "csrfmiddlewaretoken": session.cookies["csrftoken"]}
            started = time.perf_counter()
            answer = session.post(
                base + path, data=data, headers={"Referer": base + path}, allow_redirects=False
            )
            mode.approve_ms.append((time.perf_counter() - started) * 1000)
            if answer.status_code != 302:
                raise SystemExit(f"approve #{pk} answered {answer.status_code}")
        if mode.backend == QUEUED:
            started = time.perf_counter()
            worker = subprocess.Popen([*manage, "run_worker"], env=env, stdout=log, stderr=log)
            children.append(worker)
            deadline = time.monotonic() + approvals * (sink.delay + 1) + 30
            while len(sink.received()) - received_before < approvals:
                if time.monotonic() > deadline:
                    raise SystemExit("the worker did not deliver every mail in time")
                time.sleep(0.1)
            mode.delivered_seconds = time.perf_counter() - started
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def sign_in(base: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.get(f"{base}/login/", timeout=10).raise_for_status()
    session.post(
        f"{base}/login/",
        data={
            "username": "bench_approver",
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{base}/login/"},
        timeout=30,
    ).raise_for_status()
    return session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--approvals", type=int, default=8)
    parser.add_argument("--mail-delay", type=float, default=2.0)
    args = parser.parse_args()
    results = measure(approvals=args.approvals, mail_delay=args.mail_delay)
    print(results.report())
    sys.exit(0 if results.goal_met else 1)


if __name__ == "__main__":
    main()
