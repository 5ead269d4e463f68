"""Talking to the dashboard over HTTP: signing in, posting forms, loading it with wrk."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.processes import Cores


def sign_in(base: str, username: str, password: str) -> requests.Session:
    """A real sign-in through the login form: the session the pages then see."""
    session = requests.Session()
    session.get(f"{base}/login/", timeout=10).raise_for_status()
    answer = session.post(
        f"{base}/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{base}/login/"},
        allow_redirects=False,
        timeout=30,
    )
    if answer.status_code != 302 or "sessionid" not in session.cookies:
        raise SystemExit(f"Signing in as {username} failed: HTTP {answer.status_code}")
    return session


def post_form(session: requests.Session, base: str, path: str, data: dict) -> requests.Response:
    # The CSRF cookie's secret is a valid form token too (Django accepts both forms).
    data = {**data, "csrfmiddlewaretoken": session.cookies["csrftoken"]}
    return session.post(
        base + path, data=data, headers={"Referer": base + path}, allow_redirects=False, timeout=60
    )


WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
    .. '"socket_errors": %d, "status_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass
class Load:
    requests: int
    seconds: float
    p50: float  # ms
    p95: float
    p99: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(
    url: str, *, cookie: str, connections: int, seconds: int, cores: Cores, script: Path
) -> Load:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s"]
    command += ["-s", str(script)]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    done = subprocess.run(
        cores.on(cores.load, [*command, url]), capture_output=True, text=True, check=True
    )
    line = next(row for row in done.stdout.splitlines() if row.startswith("BENCH "))
    figures = json.loads(line.removeprefix("BENCH "))
    return Load(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50=figures["p50_us"] / 1000,
        p95=figures["p95_us"] / 1000,
        p99=figures["p99_us"] / 1000,
        errors=figures["socket_errors"] + figures["status_errors"],
    )
