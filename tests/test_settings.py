"""Settings are read once, in config/settings.py, and every one is documented in .env.example."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "config" / "settings.py"
ENV_EXAMPLE = ROOT / ".env.example"
# Names the file to read the others from: it cannot be set inside that file.
NOT_IN_ENV_FILE = {"ENV_FILE"}


def variables_settings_read() -> set[str]:
    """The first argument of every env.<type>("NAME", ...) and required_secret("NAME")."""
    names = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        function = node.func
        reads_env = (
            isinstance(function, ast.Attribute)
            and isinstance(function.value, ast.Name)
            and function.value.id == "env"
        ) or (isinstance(function, ast.Name) and function.id == "required_secret")
        if reads_env and isinstance(node.args[0], ast.Constant):
            names.add(node.args[0].value)
    return names - NOT_IN_ENV_FILE


def variables_documented() -> set[str]:
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))


def test_every_variable_settings_read_is_in_env_example_and_vice_versa():
    read, documented = variables_settings_read(), variables_documented()
    assert sorted(read - documented) == [], "read by config/settings.py, missing in .env.example"
    assert sorted(documented - read) == [], "in .env.example, never read by config/settings.py"


def test_every_variable_of_env_example_has_a_comment():
    lines = ENV_EXAMPLE.read_text().splitlines()
    uncommented = []
    for index, line in enumerate(lines):
        if re.match(r"[A-Z][A-Z0-9_]*=", line):
            above = lines[:index]
            # The comment may stand above a group of related variables.
            while above and re.match(r"[A-Z][A-Z0-9_]*=", above[-1]):
                above.pop()
            if not above or not above[-1].startswith("#"):
                uncommented.append(line.split("=")[0])
    assert uncommented == []


def test_the_app_reads_settings_without_defaults_of_its_own():
    """A default lives in config/settings.py only: no getattr(settings, NAME, default)."""
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("accounts_app", "bench", "scripts")
        for path in (ROOT / folder).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "getattr(settings," in line.replace(" ", "")
    ]
    assert offenders == []


def test_the_tests_never_read_the_demos_env_file():
    # `make run` writes .env (DEMO_MODE=true among others) in the checkout the tests run in.
    assert os.environ["ENV_FILE"] == os.devnull
    assert not settings.DEMO_MODE and settings.DEFAULT_USER_TIME_ZONE == "UTC"
