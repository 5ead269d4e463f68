"""The processes a run starts (simulator, gunicorn, wrk), the cores they run on, and the
fresh database they use."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from bench import bench_wire

ROOT = Path(__file__).resolve().parent.parent


# --- Processes ----------------------------------------------------------------------


class Children:
    """Every process this run starts, each in a process group of its own."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen] = []

    def start(self, command: list[str], *, env: dict, log: Path) -> subprocess.Popen:
        with open(log, "wb") as sink:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=5)
        self.processes.clear()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


@dataclass(frozen=True)
class Cores:
    """Where the server and the load generator run: different cores when there are two."""

    server: int | None
    load: int | None

    @classmethod
    def detect(cls) -> Cores:
        allowed = sorted(os.sched_getaffinity(0))
        if shutil.which("taskset") and len(allowed) >= 2:
            return cls(server=allowed[0], load=allowed[1])
        return cls(server=None, load=None)

    def on(self, core: int | None, command: list[str]) -> list[str]:
        return ["taskset", "-c", str(core), *command] if core is not None else command

    def describe(self) -> str:
        if self.server is None:
            return "not pinned (taskset or a second core missing)"
        return f"gunicorn on core {self.server}; wrk, the simulator and the client on {self.load}"


class pinned:
    """Run this process on one core for a while (the load side of a measurement)."""

    def __init__(self, core: int | None) -> None:
        self.core = core
        self.before = os.sched_getaffinity(0)

    def __enter__(self) -> None:
        if self.core is not None:
            os.sched_setaffinity(0, {self.core})

    def __exit__(self, *exc_info: object) -> None:
        os.sched_setaffinity(0, self.before)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} did not start:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


# --- Database and environment ----------------------------------------------------------


def fresh_database(base_url: str, stamp: str, scratch: Path) -> tuple[str, str, Callable]:
    """A database URL of our own, its vendor, and how to remove it."""
    if not base_url.startswith(("postgres", "pgsql")):
        return f"sqlite:///{scratch / 'bench.sqlite3'}", "sqlite", lambda: None
    import psycopg

    parts = urlsplit(base_url)
    name = f"bench_{stamp}"
    maintenance = urlunsplit(parts._replace(scheme="postgresql"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(parts._replace(path="/" + name)), "postgresql", drop


def bench_environment(database_url: str, scratch: Path) -> dict[str, str]:
    """Production settings for every process: DEBUG off, fresh secrets, no .env.

    Variables a developer may have exported for the dashboard (every one named in
    .env.example, and the Django/Alibaba ones) are dropped first, so that the run does
    not depend on the shell it was started from.
    """
    documented = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in documented
        and not key.startswith(("DJANGO_", "KVSTORE_", "ALIBABA_CLOUD_", "AXES_", "EMAIL_"))
        and key not in ("ENV_FILE", "CONN_MAX_AGE", "PYTHONPATH")
    }
    # config.settings with STATIC_ROOT in the scratch directory: collectstatic must not
    # write into the checkout, where a developer's `make run` serves from.
    settings_dir = scratch / "settings"
    settings_dir.mkdir()
    (settings_dir / "bench_settings.py").write_text(
        "from config.settings import *  # noqa: F403\n\n"
        f"STATIC_ROOT = {str(scratch / 'static')!r}\n"
    )
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(settings_dir), str(ROOT)]),
            "DJANGO_SETTINGS_MODULE": "bench_settings",
            "ENV_FILE": os.devnull,
            "DATABASE_URL": database_url,
            "DEBUG": "false",
            # Plain HTTP on loopback: no redirect to HTTPS, cookies without __Host-.
            "HTTPS": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "AUDIT_HMAC_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # wrk measures the API's lists, not its rate limit (a 429 counts as an error).
            "API_RATE_LIMIT": "1000000000",
            "ALIBABA_CLOUD_ACCESS_KEY_ID": bench_wire.ACCESS_KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": bench_wire.ACCESS_KEY_SECRET,
            "KVSTORE_REGIONS": "cn-hangzhou,cn-shanghai",
            # Notifications are rendered and written to the server's log: a benchmark
            # must not wait on (or spam) an SMTP server. (Not dummymail://: settings pass
            # it SMTP options, which Django's dummy backend refuses.)
            "EMAIL_URL": "consolemail://",
            "SITE_URL": "http://127.0.0.1",
        }
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    command = [sys.executable, str(ROOT / "manage.py"), *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout
