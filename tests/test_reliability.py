"""Faults lose nothing: two app servers on one PostgreSQL, and a database that goes away.

Two gunicorn processes (separate app servers, as behind a load balancer) serve the
test database; the simulator stands in for Alibaba Cloud. Everything listens on
loopback only.

- Concurrent approvals and executions of the same request, spread over both servers,
  make exactly one CreateAccount call, in every one of a bounded number of trials.
- The database goes away while CreateAccount is in flight: /healthz says so, the
  request ends in a visible, consistent state that reconciliation settles, and the
  audit chain still verifies.

The outage refuses new connections to the test database and ends the open ones, so
other databases on the cluster are untouched. RELIABILITY_STOP_POSTGRES=1 stops and
restarts the whole cluster instead (for a machine of its own, such as CI).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings
from django.db import connection, connections
from django.test import Client

from accounts_app.audit import Origin, verify_chain
from accounts_app.audit.testing import permit_test_flush
from accounts_app.models import AccountRequest, AuditEvent, Decision
from accounts_app.services import workflow
from accounts_app.services.inventory import sync_instances
from tests.builders import request_row
from tests.conftest import cast_member, empty_instance
from tests.fixtures.simulator import SimulatorHandle, _start

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Str0ng-Passw0rd"
TRIALS = 5
CLICKS_PER_SERVER = 3
Status = AccountRequest.Status
Action = AuditEvent.Action


@pytest.fixture(scope="module")
def module_simulator(tmp_path_factory) -> Iterator[SimulatorHandle]:
    handle = _start(tmp_path_factory.mktemp("reliability") / "simulator.json")
    try:
        yield handle
    finally:
        handle.server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AppServer:
    def __init__(self, name: str, env: dict, log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"{name}.log"
        command = [
            sys.executable, "-m", "gunicorn", "config.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", "1", "--threads", "4", "--worker-class", "gthread",
            "--timeout", "30", "--graceful-timeout", "2", "--chdir", str(ROOT),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )

    def wait_until_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.name} died:\n{self.output()}"
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"{self.name} did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def servers(django_db_setup, django_db_blocker, module_simulator, tmp_path_factory):
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            pytest.skip("two app servers need one PostgreSQL (CI runs the suite there too)")
        database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "ENV_FILE": os.devnull,
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "KVSTORE_ENDPOINT": module_simulator.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": module_simulator.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": module_simulator.access_key_secret,
        "PYTHONPATH": str(ROOT),
    }
    log_dir = tmp_path_factory.mktemp("gunicorn")
    pair = [AppServer("server-a", env, log_dir), AppServer("server-b", env, log_dir)]
    try:
        for server in pair:
            server.wait_until_ready()
        yield pair
    finally:
        for server in pair:
            server.stop()


@pytest.fixture
def world(servers, module_simulator, settings, make_user):
    permit_test_flush()
    module_simulator.reset()
    settings.KVSTORE_ENDPOINT = module_simulator.endpoint
    settings.ALIBABA_CLOUD_ACCESS_KEY_ID = module_simulator.access_key_id
    settings.ALIBABA_CLOUD_ACCESS_KEY_SECRET = module_simulator.access_key_secret
    report = sync_instances(origin=Origin.system("test"))
    assert not report.failures
    users = {
        "requester": cast_member(make_user, "requester"),
        "bob": cast_member(make_user, "approver"),
        "erin": cast_member(make_user, "second_approver"),
    }
    return servers, module_simulator, users


def browser_for(user) -> requests.Session:
    """A requests session signed in as `user`, with a CSRF cookie and its token."""
    client = Client()
    client.force_login(user)
    session = requests.Session()
    session.trust_env = False
    session.cookies.set(
        settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value
    )
    token = secrets.token_hex(16)
    session.cookies.set(settings.CSRF_COOKIE_NAME, token)
    session.csrf_token = token
    return session


def post(session: requests.Session, url: str, data: dict) -> requests.Response:
    return session.post(
        url, data={**data, "csrfmiddlewaretoken": session.csrf_token}, timeout=20,
        allow_redirects=False,
    )  # fmt: skip


def fresh_request(simulator, requester, trial: str, approvals_required: int = 1):
    instance = empty_instance(simulator, f"r-bp1rel{trial}")
    return request_row(requester, instance, f"rel{trial}", approvals_required=approvals_required)


def all_at_once(jobs: list) -> list:
    """Run the jobs in threads released together; their results, in order."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(index, job):
        barrier.wait()
        try:
            results[index] = job()
        except Exception as error:  # reported by the assertions of the caller
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_approvals_and_executions_on_two_servers_make_one_call(world):
    servers, simulator, users = world
    browsers = {name: browser_for(user) for name, user in users.items()}
    for trial in range(TRIALS):
        account_request = fresh_request(simulator, users["requester"], f"t{trial}", 2)
        base = f"/requests/{account_request.pk}"
        # Each approver clicks on both servers at once: two decisions in all.
        approvals = all_at_once(
            [
                partial(post, browsers[who], f"{server.url}{base}/approve/", {})
                for who in ("bob", "erin")
                for server in servers
            ]
        )
        assert all(isinstance(r, requests.Response) and r.status_code == 302 for r in approvals)
        assert Decision.objects.filter(request=account_request).count() == 2
        account_request.refresh_from_db()
        assert account_request.status == Status.APPROVED

        password = {"account_password": PASSWORD, "account_password_confirm": PASSWORD}
        clicks = all_at_once(
            [
                partial(post, browsers["requester"], f"{server.url}{base}/execute/", password)
                for server in servers
                for _ in range(CLICKS_PER_SERVER)
            ]
        )
        problems = [
            r for r in clicks if not isinstance(r, requests.Response) or r.status_code >= 500
        ]
        assert not problems, [servers[0].output(), servers[1].output(), problems]
        creates = [
            call
            for call in simulator.calls("CreateAccount")
            if call["instance_id"] == account_request.instance.instance_id
        ]
        assert len(creates) == 1, f"trial {trial}: {len(creates)} CreateAccount calls"
        # And the clicker sees it (post/redirect/get): one click leads to the result
        # page, the others back to the execute page, whose message says why not.
        landed = [click.headers.get("Location", "") for click in clicks]
        assert sum(place.endswith(f"{base}/execute/result/") for place in landed) == 1
        assert all(place.endswith(("/execute/", "/execute/result/")) for place in landed)
        account_request.refresh_from_db()
        assert account_request.status == Status.CREATED
        started = account_request.events.filter(action=Action.EXECUTION_STARTED).count()
        assert started == 1
    assert verify_chain().ok


# --- The database goes away -------------------------------------------------------------


def control_connection() -> psycopg.Connection:
    database = connection.settings_dict
    return psycopg.connect(
        host=database["HOST"] or "127.0.0.1",
        port=database["PORT"] or 5432,
        user=database["USER"],
        dbname="postgres",
        autocommit=True,
    )


def pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], check=False).returncode == 0


@contextlib.contextmanager
def database_outage() -> Iterator[None]:
    """The test database refuses connections and loses the open ones, then comes back."""
    name = connection.settings_dict["NAME"]
    connections.close_all()
    if os.environ.get("RELIABILITY_STOP_POSTGRES") == "1":
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        cluster = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]
        subprocess.run([*cluster, "stop", "-m", "fast"], check=True)
        try:
            yield
        finally:
            # Always back, whatever the test did meanwhile.
            subprocess.run([*cluster, "start"], check=True)
            deadline = time.monotonic() + 60
            while not pg_ready():
                assert time.monotonic() < deadline, "PostgreSQL did not come back"
                time.sleep(0.5)
        return
    with control_connection() as control:
        quoted = psycopg.sql.Identifier(name)
        control.execute(psycopg.sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(quoted))
        try:
            control.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [name],
            )
            yield
        finally:
            control.execute(
                psycopg.sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(quoted)
            )


def healthz(server) -> int:
    return requests.get(f"{server.url}/healthz", timeout=10).status_code


def test_the_database_going_away_mid_call_leaves_a_consistent_visible_state(world, monkeypatch):
    servers, simulator, users = world
    requester = browser_for(users["requester"])
    account_request = fresh_request(simulator, users["requester"], "outage")
    workflow.request_approve(
        request_id=account_request.pk,
        approver=users["bob"],
        comment="",
        origin=Origin.system("test"),
    )
    instance_id = account_request.instance.instance_id
    simulator.add_fault("slow", action="CreateAccount", instance_id=instance_id, delay=1.0)
    url = f"{servers[0].url}/requests/{account_request.pk}/execute/"
    outcome: list = []
    clicking = threading.Thread(
        target=lambda: outcome.append(
            post(
                requester, url, {"account_password": PASSWORD, "account_password_confirm": PASSWORD}
            )
        )
    )
    clicking.start()
    deadline = time.monotonic() + 10
    while not simulator.calls("CreateAccount"):
        assert time.monotonic() < deadline, servers[0].output()
        time.sleep(0.02)

    with database_outage():
        assert [healthz(server) for server in servers] == [503, 503]
        clicking.join(timeout=20)
        # The call went through; writing its outcome could not.
        assert outcome and outcome[0].status_code == 500
        assert "Traceback" not in outcome[0].text

    deadline = time.monotonic() + 20
    while [healthz(server) for server in servers] != [200, 200]:
        assert time.monotonic() < deadline, "the servers did not recover"
        time.sleep(0.2)

    # Consistent: claimed before the call, the claim on record, nothing half-written.
    account_request.refresh_from_db()
    assert account_request.status == Status.EXECUTING
    assert account_request.events.filter(action=Action.EXECUTION_STARTED).count() == 1
    assert verify_chain().ok
    # Visible: its page says it is being created, on either server.
    page = requester.get(f"{servers[1].url}/requests/{account_request.pk}/", timeout=10)
    assert page.status_code == 200
    assert "Creating" in page.text

    # Settled by the periodic reconcile_requests: the account exists, one call made.
    monkeypatch.setattr(workflow, "STUCK_EXECUTION_AFTER", timedelta(0))
    workflow.reconcile_all()
    account_request.refresh_from_db()
    assert account_request.status == Status.CREATED
    assert len(simulator.calls("CreateAccount")) == 1
    assert verify_chain().ok
