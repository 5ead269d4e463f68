"""The demo runs with DEBUG off (issue 23, finding 6): `make run` writes a .env with
DEBUG=false (and turns an older one's DEBUG=true off, keeping its secrets), collects the
static files for WhiteNoise, and the dashboard it starts serves them, with our own 404
page rather than Django's debug page."""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def env_values(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and line[0] != "#"
    )


def test_the_demo_env_turns_debug_off(tmp_path):
    target = tmp_path / ".env"
    script("write_demo_env").main(str(target))
    values = env_values(target)
    assert values["DEBUG"] == "false" and values["HTTPS"] == "false"


def test_an_older_demo_env_is_upgraded_and_keeps_its_secrets(tmp_path):
    target = tmp_path / ".env"
    target.write_text("DEBUG=true\nDEMO_MODE=true\nAUDIT_HMAC_KEY=kept-key\nSECRET_KEY=kept\n")
    script("write_demo_env").main(str(target))
    values = env_values(target)
    assert values["DEBUG"] == "false" and values["HTTPS"] == "false"
    assert values["AUDIT_HMAC_KEY"] == "kept-key" and values["SECRET_KEY"] == "kept"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_demo_dashboard_serves_static_files_and_its_own_404_with_debug_off(tmp_path):
    env_file = tmp_path / ".env"
    script("write_demo_env").main(str(env_file))
    # Only what the .env says: none of the test suite's settings.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DEBUG", "HTTPS", "SECRET_KEY", "AUDIT_HMAC_KEY", "DATABASE_URL")
        and not key.startswith(("DJANGO_", "ALIBABA_", "KVSTORE_"))
    }
    env.update(
        ENV_FILE=str(env_file),
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        STATIC_ROOT=str(tmp_path / "static"),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    for command in (["migrate", "--no-input", "-v0"], ["seed_demo"]):
        subprocess.run([*manage, *command], env=env, check=True, capture_output=True)
    port = free_port()
    dashboard = script("run_demo").start_dashboard(manage, "127.0.0.1", port, env)
    base = f"http://127.0.0.1:{port}"
    try:
        session = requests.Session()
        for _ in range(100):
            try:
                login = session.get(f"{base}/login/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert login.status_code == 200
        stylesheet = re.search(r'href="(/static/css/app\.[0-9a-f]+\.css)"', login.text)
        assert stylesheet, "hashed static names: the production storage, DEBUG off"
        assert session.get(base + stylesheet.group(1), timeout=5).status_code == 200
        password = env_values(env_file)["DEMO_PASSWORD"]
        session.post(
            f"{base}/login/",
            {
                "username": "requester",
                "password": password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"referer": f"{base}/login/"},
            timeout=5,
        )
        missing = session.get(f"{base}/no-such-page/", timeout=5)
        assert missing.status_code == 404
        assert "Page not found" in missing.text
        assert "URLconf" not in missing.text and "DEBUG = True" not in missing.text
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=10)
