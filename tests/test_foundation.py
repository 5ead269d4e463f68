"""The skeleton: sign-in, roles, health check, demo users, production checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from accounts_app import roles
from accounts_app.audit.messages import event_text
from accounts_app.models import AuditEvent
from tests.conftest import DEMO_TEST_PASSWORD

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def test_every_page_but_login_and_healthz_needs_sign_in(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert client.get(reverse("login")).status_code == 200
    assert client.get(reverse("healthz")).status_code == 200


def test_healthz_reports_the_database(client):
    response = client.get(reverse("healthz"))
    assert response.json()["database"] == "ok"


def test_healthz_answers_503_when_the_database_is_unreachable(client, monkeypatch):
    from django.db import DatabaseError, connection

    def broken_cursor(*args, **kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


def test_signing_in_reaches_the_dashboard_and_is_audited(client, requester):
    response = client.post(
        reverse("login"), {"username": "alice", "password": DEMO_TEST_PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    assert b"My requests" in response.content
    assert AuditEvent.objects.filter(action="login", actor=requester).count() == 1


def test_a_wrong_password_is_refused_and_audited(client, requester):
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    event = AuditEvent.objects.get(action="login_failed")
    assert "alice" in event_text(event)
    assert "wrong" not in event_text(event) + event.comment + event.message_params


def test_signing_out_is_audited(client, requester):
    client.force_login(requester)
    client.post(reverse("logout"))
    assert AuditEvent.objects.filter(action="logout", actor=requester).count() == 1


def test_signing_in_changes_the_session_key(client, requester):
    client.get(reverse("login"))
    client.session.save()
    before = client.session.session_key
    client.post(reverse("login"), {"username": "alice", "password": DEMO_TEST_PASSWORD})
    assert client.session.session_key != before


def test_the_three_roles_exist_with_their_permissions():
    for name, codenames in roles.GROUP_PERMISSIONS.items():
        group = Group.objects.get(name=name)
        assert sorted(group.permissions.values_list("codename", flat=True)) == sorted(codenames)


def test_seed_demo_creates_the_demo_users_idempotently(settings, django_user_model):
    settings.DEMO_PASSWORD = "Demo-Password-1"
    call_command("seed_demo")
    call_command("seed_demo")
    users = django_user_model.objects.order_by("username")
    assert [u.username for u in users] == ["admin", "approver", "approver2", "auditor", "requester"]
    assert django_user_model.objects.get(username="admin").is_superuser
    requester = django_user_model.objects.get(username="requester")
    assert requester.check_password("Demo-Password-1")
    assert list(requester.groups.values_list("name", flat=True)) == [roles.REQUESTERS]


def test_the_dashboard_shows_the_navigation_for_the_role(client, approver):
    client.force_login(approver)
    page = client.get(reverse("dashboard")).content.decode()
    for label in ["Dashboard", "New request", "Approvals", "Instances", "Audit log"]:
        assert label in page


def test_pages_carry_a_csp_with_a_nonce_and_no_store(client, requester):
    client.force_login(requester)
    response = client.get(reverse("dashboard"))
    csp = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp
    assert "object-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response["Cache-Control"] == "no-store"
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert f'nonce="{nonce}"' in response.content.decode()


def production_environment(**extra) -> dict:
    # Only what a server's environment would have: none of the test settings.
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": "a-production-like-secret-key-with-enough-length-and-variety-123456",
            "AUDIT_HMAC_KEY": "production-like-audit-key",
            "ALLOWED_HOSTS": "redis-accounts.example.com",
            "DEBUG": "false",
            "DATABASE_URL": "sqlite:////tmp/check-deploy.sqlite3",
            "ENV_FILE": "/dev/null",
        }
    )
    env.update(extra)
    return env


def test_check_deploy_passes_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "AUDIT_HMAC_KEY"])
def test_a_missing_secret_stops_the_server_and_names_the_variable(missing):
    env = production_environment()
    del env[missing]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert f"Set the environment variable {missing}" in result.stderr


def test_the_language_can_be_switched_before_signing_in(client):
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": "/login/"})
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert response.cookies["django_language"].value == "zh-hans"
