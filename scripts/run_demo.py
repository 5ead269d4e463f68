"""Run the demo: the local R-KVStore simulator, the dashboard and one background
worker, stopped together.

Started by `make run`. The dashboard is pointed at the simulator through
KVSTORE_ENDPOINT; the simulator keeps its state in .simulator-state.json.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"The simulator did not start on {host}:{port}.")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--simulator-port", type=int, default=8001)
    args = parser.parse_args()

    env = dict(os.environ, KVSTORE_ENDPOINT=f"http://127.0.0.1:{args.simulator_port}")
    manage = [sys.executable, str(ROOT / "manage.py")]
    simulator = subprocess.Popen(
        [
            *manage,
            "kvstore_simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(args.simulator_port),
            "--state",
            str(ROOT / ".simulator-state.json"),
            # A new account stays Unavailable (and the instance refuses the next one) for
            # 15 s, not the real minute: long enough to see both in the demo, short
            # enough not to stall a walk-through.
            "--activation-seconds",
            "15",
        ],
        env=env,
    )
    dashboard = worker = None
    try:
        wait_for_port("127.0.0.1", args.simulator_port)
        subprocess.run([*manage, "sync_instances"], env=env, check=False)
        print_sign_in(args.host, args.port)
        dashboard = start_dashboard(manage, args.host, args.port, env)
        # Mail, "sync now" and the periodic jobs run here (SQLite: one worker is enough).
        worker = subprocess.Popen([*manage, "run_worker"], env=env)
        processes = (simulator, dashboard, worker)
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for process in (worker, dashboard, simulator):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in (worker, dashboard, simulator):
            if process is not None:
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()


def start_dashboard(manage: list[str], host: str, port: int, env: dict) -> subprocess.Popen:
    """The dashboard as the demo runs it: DEBUG off (.env), so runserver serves no static
    file itself; WhiteNoise serves the collected ones, hashed as in production."""
    subprocess.run(
        [*manage, "collectstatic", "--no-input", "--verbosity", "0"], env=env, check=True
    )
    return subprocess.Popen([*manage, "runserver", f"{host}:{port}", "--noreload"], env=env)


def print_sign_in(host: str, port: int) -> None:
    password = os.environ.get("DEMO_PASSWORD") or read_env_value("DEMO_PASSWORD")
    print(
        f"\n  Dashboard:  http://{host}:{port}/\n"
        f"  Sign in as requester, approver, approver2, auditor or admin\n"
        f"  Password:   {password}   (DEMO_PASSWORD in .env)\n"
        f"  Stop with Ctrl-C (stops the simulator and the worker too).\n",
        flush=True,
    )


def read_env_value(name: str) -> str:
    env_file = ROOT / ".env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith(f"{name}="):
                return line.split("=", 1)[1]
    return ""


if __name__ == "__main__":
    main()
