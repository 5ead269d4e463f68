"""Security headers and cookies on every page, under the production settings.

The settings are those config/settings.py gives with HTTPS on (read from the file
itself, not copied here), so a change there that weakens production is caught. Every
route of the URLconf is visited, as a user who may see it, over HTTPS.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from accounts_app.models import AccountRequest, Instance
from accounts_app.selectors import requests as selectors
from tests.builders import request_form_data, request_row
from tests.conftest import DEMO_TEST_PASSWORD
from tests.security_support import PARAM_VALUES, make_actors, walk_routes

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]
SECURITY_SETTINGS = re.compile(
    r"^(SECURE_|SESSION_COOKIE_|CSRF_COOKIE_|LANGUAGE_COOKIE_|MESSAGE_COOKIE_)"
)
NONCE = re.compile(r"'nonce-([^']+)'")


def production_settings(monkeypatch) -> dict:
    """The security settings config/settings.py yields in production (HTTPS on)."""
    for name in ("SECURE_SSL_REDIRECT", "BEHIND_TLS_PROXY", "TRUSTED_PROXY_COUNT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "ENV_FILE": os.devnull,
        "DEBUG": "false",
        "HTTPS": "true",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "AUDIT_HMAC_KEY": secrets.token_urlsafe(32),
    }.items():
        monkeypatch.setenv(name, value)
    values = runpy.run_path(str(ROOT / "config" / "settings.py"))
    return {name: value for name, value in values.items() if SECURITY_SETTINGS.match(name)}


@pytest.fixture
def production(settings, monkeypatch):
    for name, value in production_settings(monkeypatch).items():
        setattr(settings, name, value)
    assert settings.SECURE_SSL_REDIRECT and settings.SECURE_HSTS_SECONDS >= 31536000
    return settings


@pytest.fixture
def pages(estate, make_user):
    """(label, user, url) of every route's GET, as an actor allowed to see it."""
    actors = make_actors(make_user)
    superuser = actors["superuser_requester"]
    instance = Instance.objects.get(instance_id=PARAM_VALUES["instance_id"])
    own = request_row(superuser, instance, "hdr_case", status=AccountRequest.Status.APPROVED)
    visits = []
    for route in walk_routes():
        url = route.url(**PARAM_VALUES, pk=own.pk)
        # The superuser holds every role; the sign-in page is for the signed-out.
        visits.append((route.name, None if route.name == "login" else superuser, url))
    visits.append(("not found", superuser, "/no-such-page/"))
    visits.append(("forbidden", actors["outsider"], reverse("approvals")))
    return visits


def header_problems(response, *, signed_in: bool) -> list[str]:
    problems = []
    expected = {
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "X-Frame-Options": "DENY",
    }
    for name, value in expected.items():
        if response.get(name) != value:
            problems.append(f"{name} is {response.get(name)!r}, expected {value!r}")
    if signed_in and "no-store" not in response.get("Cache-Control", ""):
        problems.append(f"Cache-Control is {response.get('Cache-Control')!r}, without no-store")
    if response.get("Content-Type", "").startswith("text/html"):
        problems += csp_problems(response)
    return problems


def csp_problems(response) -> list[str]:
    policy = response.get("Content-Security-Policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    problems = [
        f"CSP {name} is {directives.get(name)}, expected ['{value}']"
        for name, value in {
            "object-src": "'none'",
            "base-uri": "'none'",
            "frame-ancestors": "'none'",
        }.items()
        if directives.get(name) != [f"{value}"]
    ]
    script_src = directives.get("script-src", [])
    if "'unsafe-inline'" in script_src or "'unsafe-eval'" in script_src:
        problems.append(f"CSP script-src allows inline code: {script_src}")
    nonces = NONCE.findall(" ".join(script_src))
    body = response.content.decode()
    # Data blocks (json_script) are not run, so the CSP does not apply to them.
    scripts = [
        tag for tag in re.findall(r"<script\b[^>]*>", body) if 'type="application/json"' not in tag
    ]
    if scripts and len(nonces) != 1:
        return [*problems, f"a page with scripts, and no nonce in its CSP: {policy!r}"]
    for tag in scripts:
        if f'nonce="{nonces[0]}"' not in tag:
            problems.append(f"a script without this response's nonce: {tag}")
    if re.search(r"<style\b|\sstyle=\"", body):
        problems.append("an inline style, which style-src 'self' blocks")
    if re.search(r"\son[a-z]+=\"", body):
        problems.append("an inline event handler, which the CSP blocks")
    return problems


def test_every_page_sends_the_security_headers_over_https(production, pages):
    problems = []
    nonces = set()
    for label, user, url in pages:
        client = Client()
        if user is not None:
            client.force_login(user)
        response = client.get(url, secure=True)
        if response.status_code >= 500 or response.status_code in (301, 308):
            problems.append(f"{label}: {response.status_code}")
        problems += [f"{label}: {p}" for p in header_problems(response, signed_in=bool(user))]
        nonces.update(NONCE.findall(response.get("Content-Security-Policy", "")))
    assert not problems, "\n".join(problems)
    assert len(nonces) >= 10, "each page with scripts gets a fresh nonce"


def test_plain_http_is_redirected_to_https(production, pages):
    response = Client().get(reverse("login"))
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


def cookie_problems(response) -> list[str]:
    problems = []
    for name, morsel in response.cookies.items():
        if not morsel.value:
            continue  # a deletion
        if not name.startswith("__Host-"):
            problems.append(f"cookie {name} lacks the __Host- prefix")
        if not morsel["secure"]:
            problems.append(f"cookie {name} is not Secure")
        if not morsel["httponly"]:
            problems.append(f"cookie {name} is not HttpOnly")
        if morsel["samesite"] not in ("Lax", "Strict"):
            problems.append(f"cookie {name} has SameSite={morsel['samesite']!r}")
        if morsel["domain"] or morsel["path"] != "/":
            problems.append(f"cookie {name} has a Domain or a Path other than /")
    return problems


def test_sign_in_sets_only_host_prefixed_secure_httponly_samesite_cookies(production, requester):
    client = Client()
    page = client.get(reverse("login"), secure=True)
    signed = client.post(
        reverse("login"),
        {"username": requester.username, "password": DEMO_TEST_PASSWORD},
        secure=True,
    )
    language = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"}, secure=True)
    assert signed.status_code == 302
    names = set(page.cookies) | set(signed.cookies) | set(language.cookies)
    assert {"__Host-sessionid", "__Host-csrftoken", "__Host-language"} <= names
    assert cookie_problems(page) + cookie_problems(signed) + cookie_problems(language) == []


def test_a_flash_message_rides_in_a_host_prefixed_signed_cookie_not_the_session(
    production, estate, requester
):
    client = Client()
    client.force_login(requester)
    submitted = client.post(reverse("request_new"), request_form_data(), secure=True)
    assert submitted.status_code == 302
    cookie = submitted.cookies["__Host-messages"]
    assert cookie_problems(submitted) == []
    session = client.session
    assert "_messages" not in session
    said = "submitted for approval"
    shown = client.get(submitted["Location"], secure=True)
    assert said in shown.content.decode()
    # Shown once, then the cookie is deleted.
    assert shown.cookies["__Host-messages"].value == ""
    assert said not in client.get(submitted["Location"], secure=True).content.decode()
    # Signed: the cookie as it was is shown again, one with its signature changed is not.
    client.cookies["__Host-messages"] = cookie.value
    assert said in client.get(reverse("dashboard"), secure=True).content.decode()
    last = cookie.value[-1]
    client.cookies["__Host-messages"] = cookie.value[:-1] + ("A" if last != "A" else "B")
    assert said not in client.get(reverse("dashboard"), secure=True).content.decode()


def test_the_header_check_fails_when_a_header_is_missing(production, requester):
    """Deliberate regression: a page without HSTS or nosniff is caught."""
    client = Client()
    client.force_login(requester)
    response = client.get(reverse("dashboard"), secure=True)
    del response["Strict-Transport-Security"]
    response["Content-Security-Policy"] = "default-src 'self'; script-src 'self' 'unsafe-inline'"
    problems = header_problems(response, signed_in=True)
    assert any(p.startswith("Strict-Transport-Security") for p in problems)
    assert any("object-src" in p for p in problems)
    assert any("inline code" in p for p in problems)


# --- Error pages --------------------------------------------------------------------


def assert_error_page(response, status: int) -> None:
    assert response.status_code == status
    correlation_id = response["X-Correlation-Id"]
    body = response.content.decode()
    assert re.fullmatch(r"[0-9a-f]{12}", correlation_id)
    assert correlation_id in body
    for trace in ("Traceback", 'File "', "django.", "accounts_app", "Exception Value"):
        assert trace not in body


def test_a_missing_page_is_a_404_with_a_reference_and_no_trace(requester):
    client = Client()
    client.force_login(requester)
    assert_error_page(client.get("/no-such-page/"), 404)


def test_a_refusal_is_a_403_with_a_reference_and_no_trace(outsider):
    client = Client()
    client.force_login(outsider)
    assert_error_page(client.get(reverse("approvals")), 403)


def test_a_bad_request_is_a_400_with_a_reference_and_no_trace(requester):
    response = Client().get(reverse("login"), headers={"host": "evil.example.com"})
    assert_error_page(response, 400)


def test_a_crash_is_a_500_with_a_reference_and_no_trace(requester, settings, monkeypatch):
    settings.DEBUG = False

    def crash(*args, **kwargs):
        raise RuntimeError("forced failure for the error page test")

    monkeypatch.setattr(selectors, "dashboard_lists", crash)
    client = Client(raise_request_exception=False)
    client.force_login(requester)
    response = client.get(reverse("dashboard"))
    assert_error_page(response, 500)
    assert "forced failure" not in response.content.decode()


# --- Deployment checks --------------------------------------------------------------


def test_check_deploy_passes_with_production_settings_and_nothing_silenced():
    # A clean environment: what earlier tests or test tools left in os.environ
    # (DJANGO_ALLOW_ASYNC_UNSAFE, a demo EMAIL_URL) is not production.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "EMAIL_URL": "smtp+tls://dashboard@smtp.example.com:587",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ENV_FILE": os.devnull,
        "DEBUG": "false",
        "HTTPS": "true",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "AUDIT_HMAC_KEY": secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": "redis-accounts.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(0 silenced)" in result.stdout


# --- The RAM policy -----------------------------------------------------------------


def test_the_ram_policy_grants_exactly_the_four_operations_the_client_calls():
    policy = json.loads((ROOT / "docs" / "ram-policy.json").read_text())
    granted = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        granted |= {actions} if isinstance(actions, str) else set(actions)
    assert granted == {
        "kvstore:CreateAccount",
        "kvstore:DescribeAccounts",
        "kvstore:DescribeInstances",
        "kvstore:DescribeInstanceAttribute",
    }
    source = (ROOT / "accounts_app" / "alibaba" / "client.py").read_text()
    called = set(re.findall(r'self\._call\(\s*"(\w+)"', source))
    assert {f"kvstore:{action}" for action in called} == granted
