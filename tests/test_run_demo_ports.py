"""`make run` on a busy port: the real scripts/run_demo.py stops with a message that
says which port, a non-zero exit, and nothing started (no traceback, no banner)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_demo(*args: str) -> subprocess.CompletedProcess:
    # A chat key in the environment: the script must not touch the checkout's .env.
    env = dict(os.environ, CHAT_ENCRYPTION_KEYS="x" * 44, DEMO_PASSWORD="not-shown")
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run_demo.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_busy_dashboard_port_stops_the_demo_before_anything_starts():
    simulator_port, chat_port = free_port(), free_port()
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        busy = other_program.getsockname()[1]

        result = run_demo(
            "--port", str(busy),
            "--simulator-port", str(simulator_port),
            "--chat-port", str(chat_port),
        )  # fmt: skip

    assert result.returncode != 0
    assert f"the dashboard (PORT): 127.0.0.1:{busy}" in result.stderr
    assert "make run PORT=" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "not-shown" not in result.stdout and "Sign in as" not in result.stdout
    # The simulator was never started: its port is still free.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", simulator_port))


def test_a_busy_simulator_port_is_named_too():
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        busy = other_program.getsockname()[1]

        result = run_demo(
            "--port", str(free_port()),
            "--simulator-port", str(busy),
            "--chat-port", str(free_port()),
        )  # fmt: skip

    assert result.returncode != 0
    assert f"the simulator (SIMULATOR_PORT): 127.0.0.1:{busy}" in result.stderr
    assert "Traceback" not in result.stderr


def test_links_in_mails_point_at_the_port_the_demo_serves_on(monkeypatch, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_demo", ROOT / "scripts" / "run_demo.py")
    run_demo_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_demo_module)
    monkeypatch.delenv("SITE_URL", raising=False)
    monkeypatch.setattr(run_demo_module, "ROOT", tmp_path)

    assert run_demo_module.site_url_env("127.0.0.1", 8100) == {"SITE_URL": "http://127.0.0.1:8100"}
    # A SITE_URL of one's own, in .env or the environment, is kept.
    (tmp_path / ".env").write_text("SITE_URL=https://redis-accounts.example.com\n")
    assert run_demo_module.site_url_env("127.0.0.1", 8100) == {}
    (tmp_path / ".env").unlink()
    monkeypatch.setenv("SITE_URL", "https://elsewhere.example.com")
    assert run_demo_module.site_url_env("127.0.0.1", 8100) == {}


def test_the_workers_mail_and_lines_go_to_its_log_not_under_the_sign_in_lines(
    monkeypatch, tmp_path, capsys
):
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_demo", ROOT / "scripts" / "run_demo.py")
    run_demo_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_demo_module)
    log = tmp_path / "var" / "worker.log"
    monkeypatch.setattr(run_demo_module, "ROOT", tmp_path)
    monkeypatch.setattr(run_demo_module, "WORKER_LOG", log)
    monkeypatch.setenv("DEMO_PASSWORD", "Demo-password-1")
    # A stand-in for `manage.py run_worker`: a mail on stdout, a task's line on stderr.
    talker = "import sys; print('Subject: a mail'); print('Task state=SUCCESSFUL', file=sys.stderr)"
    worker = run_demo_module.start_worker([sys.executable, "-c", talker], dict(os.environ))
    assert worker.wait(timeout=30) == 0
    run_demo_module.print_sign_in("127.0.0.1", 8100, 8103)

    printed = capsys.readouterr().out
    assert "Subject: a mail" not in printed and "Task state" not in printed
    assert "Mail:       var/worker.log" in printed
    assert sorted(log.read_text().splitlines()) == ["Subject: a mail", "Task state=SUCCESSFUL"]
