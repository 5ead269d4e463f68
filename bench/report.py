"""The report: a Markdown section of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
from pathlib import Path

from bench.goals import goals
from bench.measure import SLOW_PAGE_MS
from bench.results import Results, pages_by_key

ROOT = Path(__file__).resolve().parent.parent

VENDOR_TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
        ram = f"{int(memory) / 2**20:.0f} GiB RAM"
    except OSError:
        ram = "RAM unknown"
    import django

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores, {ram}",
        "software": f"Linux {platform.release()}, Python {platform.python_version()}, "
        f"Django {django.get_version()}",
        "commit": commit + (" with uncommitted changes" if dirty else ""),
    }


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def rate(rps: float) -> str:
    return f"{rps:,.0f}" if rps >= 10 else f"{rps:.1f}"


def render(results: Results) -> str:
    title = VENDOR_TITLES[results.vendor]
    about = machine()
    sizes, timing = results.sizes, results.timing
    pages = pages_by_key(results)
    ceiling = pages["ceiling"]
    lines = [
        f"## {title}",
        "",
        f"Run of {results.started:%Y-%m-%d %H:%M} UTC on commit {about['commit']}, "
        f"{results.total_seconds / 60:.1f} minutes in all.",
        "",
        f"- Machine: {about['cpu']}; {about['software']}; {results.database_version}.",
        f"- Data: {sizes.events:,} audit events, {sizes.instances:,} instances, "
        f"{sizes.requests:,} requests (seeded in "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in results.seed_seconds.items())
        + ").",
        f"- Server: gunicorn, 1 worker, 1 thread, DEBUG off; {results.cores.describe()}.",
        f"- Load: wrk, {timing.rounds} rounds over the pages, each page {timing.seconds} s at "
        f"1 connection then {timing.saturation_seconds} s at {timing.connections}; shown: "
        "the round with the lowest p50, and the highest throughput. POSTs "
        f"{timing.iterations} times each with Python requests on one session.",
        f"- Other processes on the machine used {results.others_share:.0%} of its CPUs while "
        "the pages were measured"
        + (
            ": latencies are inflated and noisy (see the spread column); the worker's CPU time "
            "per request is the steadier figure."
            if results.others_share > 0.05
            else "."
        ),
        "",
        "### Pages",
        "",
        "Latency at one connection (the best round); the gunicorn worker's CPU time per "
        "request in that round (user + system, from /proc: time spent waiting for a core is "
        "not in it"
        + (", nor is the PostgreSQL server's own work" if results.vendor == "postgresql" else "")
        + "); the spread of p50 between rounds (worst over best: 1.00 is a quiet machine); "
        "throughput at one connection and at saturation; queries of one request "
        "(counted in-process with the same session). The last three columns compare with the "
        "ceiling: signed-in `/livez`, the full middleware stack with the session and the "
        "user, and one `SELECT 1`; the worker's CPU against the ceiling's is the goal's "
        "figure (bench/goals.py).",
        "",
    ]
    rows = []
    for page in results.pages:
        rows.append(
            [
                page.label
                + (f" ({page.one.requests} requests)" if page.one.requests < 100 else ""),
                f"{page.one.p50:.2f}",
                f"{page.one.p95:.2f}",
                f"{page.one.p99:.2f}",
                f"{page.cpu_ms:.2f}",
                f"{page.spread:.2f}",
                rate(page.one.rps),
                rate(page.saturated.rps) if page.saturated else "—",
                str(page.queries),
                f"{page.cpu_ms / ceiling.cpu_ms:.1f}×",
                f"{page.one.p50 / ceiling.one.p50:.1f}×",
                f"{page.saturation_rps / ceiling.saturation_rps:.0%}",
            ]
        )
    lines.append(
        table(
            [
                "page",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "CPU ms",
                "spread",
                "req/s, 1 conn",
                f"req/s, {timing.connections} conns",
                "queries",
                "CPU vs ceiling",
                "p50 vs ceiling",
                "req/s vs ceiling",
            ],
            rows,
        )
    )
    errors = sum(page.errors for page in results.pages)
    if errors:
        lines += ["", f"**{errors} requests failed under load (socket errors or non-2xx).**"]
    if any(page.saturated is None for page in results.pages):
        lines += [
            "",
            f"—: a page slower than {SLOW_PAGE_MS / 1000:.0f} s is not loaded at saturation "
            "(one sync worker serves it at 1/latency per second however many connections "
            "wait); its throughput at one connection stands in for the ratio.",
        ]
    lines += [
        "",
        "### POST flows",
        "",
        "Each on a request of its own, timed from the POST to its answer (a redirect, or the "
        "execute page with the result), over loopback from Python.",
        "",
    ]
    lines.append(
        table(
            ["flow", "p50 ms", "p95 ms", "p99 ms", "mean ms", "queries"],
            [
                [
                    flow.label,
                    f"{flow.p(0.5):.2f}",
                    f"{flow.p(0.95):.2f}",
                    f"{flow.p(0.99):.2f}",
                    f"{statistics.fmean(flow.samples):.2f}",
                    str(flow.queries),
                ]
                for flow in results.flows
            ],
        )
    )
    form, signing, verify, export = results.form, results.signing, results.verify, results.export
    shipped = results.verify_shipped
    v3, v2 = results.client["v3"], results.client["v2"]
    lines += ["", "### Micro-benchmarks", ""]
    lines.append(
        table(
            ["what", "figure"],
            [
                [
                    f"request form: `AccountRequestForm(data).is_valid()`, "
                    f"{form['instance_count']:,} instances",
                    f"{form['form_us']:,.0f} µs (median)",
                ],
                ["… its queries (one call)", str(form["queries"])],
                ["… the rules alone (the five API parameters)", f"{form['rules_us']:,.1f} µs"],
                [
                    "V3 signing (ACS3-HMAC-SHA256), CreateAccount (best of 3 × 20,000)",
                    f"p50 {signing['v3_p50']:.1f} µs, p95 {signing['v3_p95']:.1f} µs",
                ],
                [
                    "V2 signing (HMAC-SHA1), CreateAccount",
                    f"p50 {signing['v2_p50']:.1f} µs, p95 {signing['v2_p95']:.1f} µs",
                ],
                [
                    f"client, DescribeInstanceAttribute, V3 ({v3['calls']} calls)",
                    f"whole call p50 {v3['total_p50']:.2f} ms, p95 {v3['total_p95']:.2f} ms; "
                    f"client CPU p95 {v3['cpu_p95']:.2f} ms",
                ],
                [
                    f"client, DescribeInstanceAttribute, V2 ({v2['calls']} calls)",
                    f"whole call p50 {v2['total_p50']:.2f} ms, p95 {v2['total_p95']:.2f} ms; "
                    f"client CPU p95 {v2['cpu_p95']:.2f} ms",
                ],
                [
                    f"`verify_audit_chain --workers 1`, {verify['events']:,} events "
                    "(better of 2 runs)",
                    f"{verify['seconds']:.1f} s, peak {verify['peak_mb']:.0f} MB",
                ],
                [
                    "… as shipped (`--workers`: one per CPU, up to 4)",
                    f"{shipped['seconds']:.1f} s, peak {shipped['peak_mb']:.0f} MB",
                ],
                [
                    f"CSV export through gunicorn, {export['lines'] - 1:,} events",
                    f"{export['seconds']:.1f} s, {export['bytes'] / 1e6:.0f} MB, "
                    f"{(export['lines'] - 1) / export['seconds']:,.0f} events/s",
                ],
                [
                    "… the worker's memory",
                    f"{export['rss_before_mb']:.0f} MB before, peak {export['peak_mb']:.0f} MB"
                    + ("" if export["peak_is_export_only"] else " (peak since the worker started)"),
                ],
            ],
        )
    )
    first, deep, admin = pages["audit_first"], pages["audit_deep"], pages["admin"]
    lines += [
        "",
        "### Ratios",
        "",
        f"- Audit page against the admin changelist of the same table: "
        f"{first.saturation_rps / admin.saturation_rps:.1f}× the throughput at saturation "
        f"({first.saturation_rps:,.0f} against {admin.saturation_rps:,.0f} req/s), "
        f"{admin.cpu_ms / first.cpu_ms:.1f}× less worker CPU per request; 90 % deep: "
        f"{deep.saturation_rps / pages['admin_deep'].saturation_rps:.1f}× the throughput. "
        f"The ceiling itself is {ceiling.saturation_rps / admin.saturation_rps:.1f}× the "
        "admin changelist: no signed-in page can do better than that.",
        f"- Page 90 % deep against the first page: {deep.one.p50 / first.one.p50:.2f}× (p50), "
        f"{deep.one.p95 / first.one.p95:.2f}× (p95).",
        "- Each page against the ceiling: the last three columns of the pages table.",
        "",
        "### Goals",
        "",
    ]
    lines.append(
        table(
            ["goal", "figure", "result"],
            [
                [goal, figure, "met" if met else "**missed**"]
                for goal, figure, met in goals(results)
            ],
        )
    )
    return "\n".join(lines) + "\n"


HEADER = """# Benchmarks

Figures of `make bench` (`bench/run.py`): the dashboard at a million audit events, 5,000
instances and 50,000 requests, under gunicorn (one worker, one thread, production
settings) on one core, with wrk on another; the simulator stands in for Alibaba Cloud.
Each database has a section of its own, rewritten by a run on that database:

    make bench                                                        # SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make bench  # PostgreSQL

Absolute figures depend on the machine; the ratios (each page's worker CPU against the
ceiling's, the audit page against the admin changelist, the deep page against the first)
hold across machines. The goals are issue 20's (bench/goals.py); the first section says
where each page's time goes (bench/profile_pages.py), and what was changed for it.
"""


KEPT_SECTIONS = ("profile", *VENDOR_TITLES)


def write_section(path: Path, vendor: str, report: str) -> None:
    """Replace this database's section of the report, keep the other's (and the
    profile of the pages, written by hand from bench/profile_pages.py)."""
    sections = {}
    if path.exists():
        for name in KEPT_SECTIONS:
            found = re.search(rf"<!-- {name} -->\n(.*?)<!-- /{name} -->\n", path.read_text(), re.S)
            if found:
                sections[name] = found.group(1)
    # Each section ends with a blank line before its end marker, whatever the report's end.
    sections[vendor] = report.rstrip() + "\n\n"
    body = [HEADER]
    for name in KEPT_SECTIONS:
        if name in sections:
            body.append(f"<!-- {name} -->\n{sections[name]}<!-- /{name} -->\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(body))
