"""The measurements: pages under wrk, the POST flows, and the micro-benchmarks."""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from urllib.parse import urlencode

import requests

from bench import bench_wire
from bench.dashboard import Load, post_form, run_wrk
from bench.processes import Cores, pinned

ROOT = Path(__file__).resolve().parent.parent

SLOW_PAGE_MS = 1_000.0
DEMO_INSTANCE = bench_wire.INSTANCE_ID  # r-bp1ord5x0c9kq2m7wa, healthy, in the demo estate
ACCOUNT_PASSWORD = "Str0ng-Passw0rd"  # noqa: S105 - sent to the simulator only


@dataclass
class Page:
    key: str
    label: str
    path: str
    role: str | None  # who is signed in (None: anonymous)
    group: str  # "ceiling", "audit", "request", "peer", "other"
    live: bool = False  # shows live Alibaba data (more queries allowed: bench/goals.py)
    one: Load | None = None
    saturated: Load | None = None
    queries: int | None = None
    cpu_ms: float | None = None  # the worker's CPU time per request, at one connection
    rounds: list[tuple[Load, float]] = field(default_factory=list)  # (load, cpu_ms)
    saturated_rounds: list[Load] = field(default_factory=list)

    @property
    def spread(self) -> float:
        p50s = [load.p50 for load, _ in self.rounds]
        return max(p50s) / min(p50s)

    @property
    def saturation_rps(self) -> float:
        """Requests/s at saturation; for a page too slow to saturate, at one connection."""
        return (self.saturated or self.one).rps

    @property
    def errors(self) -> int:
        errors = sum(load.errors for load, _ in self.rounds)
        return errors + sum(load.errors for load in self.saturated_rounds)


def audit_scenarios(head: int) -> list[tuple[str, str, dict]]:
    """The audit page's single filters, with values taken from the seeded events."""
    from accounts_app.models import AuditEvent

    sample = (
        AuditEvent.objects.filter(action="account_created")
        .exclude(account_name="")
        .exclude(actor_name="")
        .order_by("-seq")
        .values("actor_name", "instance_id", "account_name", "created_at")
    )
    sample = sample[min(1_000, sample.count() - 1)]
    day = sample["created_at"].astimezone(UTC).date().isoformat()
    return [
        ("audit_first", "audit: first page", {}),
        # 90 % of the way down the log, by the keyset cursor a reader's "older" link uses.
        ("audit_deep", "audit: page 90 % deep", {"before": head - int(head * 0.9)}),
        ("audit_action", "audit: action = execution failed", {"action": "execution_failed"}),
        ("audit_outcome", "audit: outcome = denied", {"outcome": "denied"}),
        ("audit_actor", "audit: actor", {"actor": sample["actor_name"]}),
        ("audit_instance", "audit: instance ID", {"instance_id": sample["instance_id"]}),
        ("audit_account", "audit: account name", {"account_name": sample["account_name"]}),
        ("audit_day", "audit: one day", {"date_from": day, "date_to": day}),
        ("audit_search", "audit: free-text search", {"q": sample["account_name"][:6]}),
    ]


def busiest_instance() -> str:
    """The instance whose page lists the most accounts the sweep saw."""
    from django.db.models import Count

    from accounts_app.models import Instance

    instances = Instance.objects.annotate(known=Count("known_accounts")).order_by("-known", "pk")
    return instances.values_list("instance_id", flat=True)[0]


def build_pages(head: int, detail_pending: int, detail_created: int) -> list[Page]:
    pages = [
        # /livez: the middleware stack and one trivial query (/healthz also asks the task
        # queue how it is doing, which is not the ceiling of a page).
        Page("ceiling_anon", "ceiling: /livez, anonymous", "/livez", None, "ceiling"),
        Page("ceiling", "ceiling: /livez, signed in", "/livez", "auditor", "ceiling"),
        Page("dashboard", "dashboard (approver)", "/", "approver", "request"),
        Page("instances", "instances, first page", "/instances/", "requester", "other"),
    ]
    for key, label, params in audit_scenarios(head):
        path = "/audit/" + (f"?{urlencode(params)}" if params else "")
        pages.append(Page(key, label, path, "auditor", "audit"))
    pages += [
        Page(
            "detail_pending",
            "request detail, pending (live pre-flight)",
            f"/requests/{detail_pending}/",
            "approver",
            "request",
            live=True,
        ),
        Page(
            "detail_created",
            "request detail, created",
            f"/requests/{detail_created}/",
            "approver",
            "request",
        ),
        Page("request_form", "new request form", "/requests/new/", "requester", "request"),
        # The lists the later issues added: the same goals (issue 20: "pages the other
        # issues add ... meet the same goals").
        Page("request_list", "requests, mine", "/requests/", "requester", "request"),
        Page(
            "request_list_all",
            "requests, all, searched",
            "/requests/?tab=all&q=app",
            "auditor",
            "request",
        ),
        Page("approvals", "approvals (approver)", "/approvals/", "approver", "request"),
        Page("drift", "drift", "/drift/", "auditor", "other"),
        Page(
            "instance_detail",
            "instance detail (its accounts)",
            f"/instances/{busiest_instance()}/",
            "requester",
            "other",
        ),
        Page("preferences", "preferences", "/preferences/", "requester", "other"),
        Page("created_accounts", "created accounts", "/audit/accounts/", "auditor", "audit"),
        Page(
            "admin",
            "peer: admin changelist of audit events",
            "/admin/accounts_app/auditevent/",
            "admin",
            "peer",
        ),
        Page(
            "admin_deep",
            "peer: admin changelist, 90 % deep",
            f"/admin/accounts_app/auditevent/?p={max(1, int(head / 100 * 0.9))}",
            "admin",
            "peer",
        ),
    ]
    from bench.bench_api import api_pages

    return pages + api_pages(head)


def count_queries(path: str, sessionid: str | None) -> int:
    """Queries of one GET, in this process, with the session the load used."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    if sessionid:
        client.cookies["sessionid"] = sessionid
    # Once first: the idle-timeout middleware writes the session at most once a minute.
    assert client.get(path).status_code == 200, path
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200, path
    return len(queries)


def measure_pages(pages, base, sessions, timing, cores, script, processes, log) -> float:
    """Every page under wrk; returns the share of the CPUs other processes used meanwhile.

    In `timing.rounds` rounds over all the pages, each page at one connection then at
    saturation; kept: the round with the lowest p50, and the highest throughput. On a
    shared machine a burst of someone else's work then lands in one round of a few
    pages, not in a page's only measurement. The spread (worst round's p50 over the
    best's) shows how much that mattered.
    """
    master, worker, simulator = processes
    cookies = {}
    for page in pages:
        session = sessions[page.role] if page.role else requests.Session()
        cookies[page.key] = f"sessionid={session.cookies['sessionid']}" if page.role else ""
        for _ in range(5):  # warm the code paths, and check the page answers
            started = time.perf_counter()
            answer = session.get(base + page.path, allow_redirects=False, timeout=600)
            if answer.status_code != 200:
                raise SystemExit(f"{page.path} answered {answer.status_code}")
            if time.perf_counter() - started > 1:
                break  # a page this slow is warm after one request
    others = OtherWork(own=[master, worker, simulator])
    for number in range(timing.rounds):
        for page in pages:
            cpu_before = cpu_seconds(worker)
            load = run_wrk(
                base + page.path,
                cookie=cookies[page.key],
                connections=1,
                seconds=timing.seconds,
                cores=cores,
                script=script,
            )
            cpu_ms = (cpu_seconds(worker) - cpu_before) * 1000 / max(load.requests, 1)
            page.rounds.append((load, cpu_ms))
            drain(base)
            # With one sync worker, a page of a second or more serves 1/latency per
            # second whatever the connections; measuring it would take minutes.
            if load.p50 < SLOW_PAGE_MS:
                saturated = run_wrk(
                    base + page.path,
                    cookie=cookies[page.key],
                    connections=timing.connections,
                    seconds=timing.saturation_seconds,
                    cores=cores,
                    script=script,
                )
                page.saturated_rounds.append(saturated)
                drain(base)
        log(f"Round {number + 1} of {timing.rounds} done")
    share = others.share()
    for page in pages:
        page.one, page.cpu_ms = min(page.rounds, key=lambda entry: entry[0].p50)
        if page.saturated_rounds:
            page.saturated = max(page.saturated_rounds, key=lambda load: load.rps)
        session = sessions.get(page.role)
        page.queries = count_queries(page.path, session.cookies["sessionid"] if session else None)
        log(
            f"{page.label:46} p50 {page.one.p50:7.2f}  p95 {page.one.p95:7.2f}  "
            f"p99 {page.one.p99:7.2f} ms  cpu {page.cpu_ms:6.2f} ms  "
            f"spread {page.spread:4.2f}  {page.saturation_rps:8.1f} req/s  "
            f"{page.queries} queries" + (f"  ({page.errors} errors)" if page.errors else "")
        )
    return share


class OtherWork:
    """How busy the machine was with work other than this benchmark's own processes.

    The CPU time of the whole machine (/proc/stat) minus that of the server, the
    simulator, this process and its reaped children (wrk), over the wall time.
    """

    def __init__(self, own: list[int]) -> None:
        self.own = own
        self.started = time.monotonic()
        self.busy, self.mine = self._busy(), self._mine()

    def share(self) -> float:
        """The share of all CPUs (0 to 1) the others used since this was created."""
        elapsed = (time.monotonic() - self.started) * (os.cpu_count() or 1)
        others = (self._busy() - self.busy) - (self._mine() - self.mine)
        return max(0.0, others / elapsed) if elapsed else 0.0

    @staticmethod
    def _busy() -> float:
        # user nice system idle iowait irq softirq steal: all but idle and iowait.
        ticks = [int(value) for value in Path("/proc/stat").read_text().split()[1:9]]
        return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")

    def _mine(self) -> float:
        usage = [
            resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        ]
        return sum(u.ru_utime + u.ru_stime for u in usage) + sum(map(cpu_seconds, self.own))


def drain(base: str) -> None:
    """Wait until the worker has served what wrk left queued when it stopped.

    The sync worker takes connections in order, so this answer comes after theirs; a
    slow page's backlog would otherwise be counted in the next page's figures.
    """
    requests.get(f"{base}/livez", timeout=600).raise_for_status()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far: not inflated by waiting for a core."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Flow:
    key: str  # "submit", "approve", "execute" (bench/goals.py's POST_MAX_QUERIES)
    label: str
    samples: list[float]  # ms
    queries: int | None = None

    def p(self, fraction: float) -> float:
        return percentile(self.samples, fraction)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure_flows(base, sessions, execution_instances, iterations, cores) -> list[Flow]:
    """Submit, approve and execute, each `iterations` times, on fresh requests.

    One keep-alive session per user (gunicorn's sync worker closes the connection after
    each answer anyway, as it would behind a proxy). Each POST is timed alone: the pages
    around it (the redirect's target) are not.
    """
    from accounts_app.models import AccountRequest

    requester, approver = sessions["requester"], sessions["approver"]
    submitted, approved, executed, pks = [], [], [], []
    run = uuid.uuid4().hex[:4]
    with pinned(cores.load):
        for number in range(iterations):
            data = {
                "instance_id": execution_instances[number % len(execution_instances)],
                "account_name": f"bench{run}_{number:04d}",
                "account_privilege": "RoleReadOnly",
                "account_description": "benchmark-account",
                "account_type": "Normal",
                "justification": "Benchmark: one submission of many.",
            }
            started = time.perf_counter()
            answer = post_form(requester, base, "/requests/new/", data)
            submitted.append((time.perf_counter() - started) * 1000)
            if answer.status_code != 302:
                raise SystemExit(f"Submission {number} answered {answer.status_code}")
            pks.append(int(answer.headers["Location"].rstrip("/").rsplit("/", 1)[1]))
        for pk in pks:
            started = time.perf_counter()
            answer = post_form(approver, base, f"/requests/{pk}/approve/", {"comment": "ok"})
            approved.append((time.perf_counter() - started) * 1000)
            if answer.status_code != 302:
                raise SystemExit(f"Approval of {pk} answered {answer.status_code}")
        for pk in pks:
            data = {"account_password": ACCOUNT_PASSWORD, "account_password_confirm": ""}
            data["account_password_confirm"] = data["account_password"]
            started = time.perf_counter()
            answer = post_form(requester, base, f"/requests/{pk}/execute/", data)
            executed.append((time.perf_counter() - started) * 1000)
            # Post/redirect/get: the result is a page of its own, not timed here.
            if answer.status_code != 302 or not answer.headers["Location"].endswith("/result/"):
                raise SystemExit(f"Execution of {pk} answered {answer.status_code}")
    created = AccountRequest.objects.filter(pk__in=pks, status="created").count()
    if created != len(pks):
        raise SystemExit(f"Only {created} of {len(pks)} executions created their account.")
    flows = [
        Flow("submit", "submit a request (POST, live pre-flight)", submitted),
        Flow("approve", "approve a request (POST)", approved),
        Flow("execute", "execute: CreateAccount on the simulator (POST)", executed),
    ]
    for flow, count in zip(flows, flow_queries(sessions, execution_instances[0]), strict=True):
        flow.queries = count
    return flows


def flow_queries(sessions, instance_id: str) -> list[int]:
    """The query count of each POST, once more in this process, on a request of its own."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    clients = {}
    for role in ("requester", "approver"):
        clients[role] = Client(HTTP_HOST="127.0.0.1")
        clients[role].cookies["sessionid"] = sessions[role].cookies["sessionid"]
    name = f"benchq_{uuid.uuid4().hex[:6]}"
    data = {
        "instance_id": instance_id,
        "account_name": name,
        "account_privilege": "RoleReadOnly",
        "account_description": "benchmark-account",
        "account_type": "Normal",
        "justification": "Benchmark: counting queries.",
    }
    counts = []
    with CaptureQueriesContext(connection) as queries:
        answer = clients["requester"].post("/requests/new/", data)
    assert answer.status_code == 302, answer.status_code
    counts.append(len(queries))
    pk = int(answer["Location"].rstrip("/").rsplit("/", 1)[1])
    with CaptureQueriesContext(connection) as queries:
        answer = clients["approver"].post(f"/requests/{pk}/approve/", {"comment": "ok"})
    assert answer.status_code == 302, answer.status_code
    counts.append(len(queries))
    password = {"account_password": ACCOUNT_PASSWORD, "account_password_confirm": ACCOUNT_PASSWORD}
    with CaptureQueriesContext(connection) as queries:
        answer = clients["requester"].post(f"/requests/{pk}/execute/", password)
    assert answer.status_code == 302, answer.status_code  # to the result page
    counts.append(len(queries))
    return counts


def bench_form_validation(instance_id: str, budget_s: float = 4.0) -> dict[str, float]:
    """AccountRequestForm(data).is_valid() in this process, µs per call, and its parts."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import translation

    from accounts_app import rules
    from accounts_app.forms.requests import AccountRequestForm
    from accounts_app.models import Instance

    data = {
        "instance_id": instance_id,
        "account_name": "orders_reader",
        "account_privilege": "RoleReadOnly",
        "account_description": "订单服务只读账号_orders-ro",
        "account_type": "Normal",
        "justification": "Nightly reports need read access.",
    }
    params = {
        "InstanceId": instance_id,
        "AccountName": data["account_name"],
        "AccountPrivilege": data["account_privilege"],
        "AccountDescription": data["account_description"],
        "AccountType": data["account_type"],
    }

    def whole() -> None:
        form = AccountRequestForm(data)
        assert form.is_valid(), form.errors

    def rules_only() -> None:
        for param, value in params.items():
            rules.validate(param, value)

    with translation.override("en"):
        with CaptureQueriesContext(connection) as queries:
            whole()
        return {
            "form_us": _median_us(whole, budget_s),
            "queries": len(queries),
            "rules_us": _median_us(rules_only, 1.0),
            "instance_count": Instance.objects.filter(is_gone=False).count(),
        }


def _median_us(call: Callable[[], object], budget_s: float) -> float:
    for _ in range(3):
        call()
    samples = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < 20 or (time.perf_counter() < deadline and len(samples) < 100_000):
        started = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - started) / 1000)
    return statistics.median(samples)


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall time (s), peak RSS (bytes) and stdout of a command run from the repository root.

    wait4() gives the resource use of that one child; on Linux its peak RSS also
    covers the grandchildren it waited for (verify_audit_chain's workers).
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(command)} failed:\n{output}")
    return seconds, usage.ru_maxrss * 1024, output


def bench_verify(env: dict[str, str], workers: int | None = None) -> dict[str, float | str]:
    """manage.py verify_audit_chain: wall time and peak memory (workers included).
    ``workers``: its --workers (None: as shipped, one per CPU up to 4)."""
    command = [sys.executable, str(ROOT / "manage.py"), "verify_audit_chain"]
    if workers is not None:
        command += ["--workers", str(workers)]
    seconds, peak, output = run_measured(command, env)
    checked = re.search(r"Checked (\d+) events", output)
    return {
        "seconds": seconds,
        "peak_mb": peak / 1e6,
        "events": int(checked.group(1)) if checked else 0,
    }


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    if len(children) != 1:
        raise SystemExit(f"gunicorn should have one worker, it has {children}")
    return int(children[0])


def memory_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024 / 1e6
    raise SystemExit(f"No {key} for process {pid}")


def bench_export(base: str, session: requests.Session, master: int, cores: Cores) -> dict:
    """GET /audit/export.csv through gunicorn, every byte read; the worker's peak RSS.

    The worker's high-water mark is reset first (clear_refs 5), so the peak is the
    export's, not that of an earlier page.
    """
    worker = worker_pid(master)
    reset = True
    try:
        Path(f"/proc/{worker}/clear_refs").write_text("5")
    except OSError:
        reset = False
    before = memory_mb(worker, "VmRSS")
    size = lines = 0
    with pinned(cores.load):
        started = time.perf_counter()
        with session.get(f"{base}/audit/export.csv", stream=True, timeout=600) as answer:
            answer.raise_for_status()
            for chunk in answer.iter_content(chunk_size=1 << 16):
                size += len(chunk)
                lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
    if worker_pid(master) != worker:
        raise SystemExit("The gunicorn worker was replaced during the export.")
    return {
        "seconds": seconds,
        "bytes": size,
        "lines": lines,
        "rss_before_mb": before,
        "peak_mb": memory_mb(worker, "VmHWM"),
        "peak_is_export_only": reset,
    }
