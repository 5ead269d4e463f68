"""Each log line is printed once, DEBUG on or off: the task worker's lines ("Task id=...
state=...", logger django.tasks) came out twice in `make run` with DEBUG on, once through
Django's own "django" console handler and once through the root's (issue 21)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Django configures logging in setup() from config.settings, as manage.py run_worker does.
LOG_ONE_LINE_OF_EACH = """
import logging, django
django.setup()
logging.getLogger("django.tasks").info("task-line-marker")
logging.getLogger("django_tasks_db").info("worker-line-marker")
logging.getLogger("accounts_app.background.sync").info("app-line-marker")
"""


def printed(debug: str) -> str:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "LOG_", "DEBUG"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        ENV_FILE=os.devnull,
        DEBUG=debug,
        SECRET_KEY="not-secret-for-this-test",
        AUDIT_HMAC_KEY="k" * 64,
        LOG_LEVEL="INFO",
    )
    result = subprocess.run(
        [sys.executable, "-c", LOG_ONE_LINE_OF_EACH],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout + result.stderr


@pytest.mark.parametrize("debug", ["true", "false"])
def test_each_log_line_is_printed_once(debug):
    output = printed(debug)
    for marker in ("task-line-marker", "worker-line-marker", "app-line-marker"):
        assert output.count(marker) == 1, output
