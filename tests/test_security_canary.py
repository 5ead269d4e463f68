"""The canary suite: an account password never comes to rest anywhere.

A fresh random password, valid under the API's rules, is driven through every path of
the execute step: success, every fault mode of the simulator, every validation error,
a mismatched confirmation, an expired approval, a concurrent second click, a stale
sign-in, an open circuit breaker, and an unhandled exception with DEBUG off and error
mails to the admins. Meanwhile every log record of every logger is kept at DEBUG
(SQL with its parameters included), and every response. Then the whole database is
dumped (SQLite's iterdump, PostgreSQL's pg_dump), the sessions decoded, the cache
unpickled, the mails and the console output read, and all of it is searched for the
password raw and encoded: zero hits.

The notifications those paths cause go through the real task queue (django-tasks-db's
table) and its worker, once failing (errors, tracebacks and the dead letter are kept)
and once sent, so the dump searches the task tables too. Chat channels of every
platform get theirs over loopback (tests/fixtures/chat_fakes.py): what the platforms
received is searched as well, and the channels' webhook tokens and signing secrets
are searched for like the password, everywhere but in the webhook URLs themselves.
A fleet request runs with the password typed once, on its page and through the API.
The browser's profile directory is searched the same way by
tests/test_e2e_browser_profile.py (Chromium's own files, written on close). Since issue 23
the run also meets an upstream that echoes the password back in every encoding, a crash
with DEBUG on (the debug page), and the new sinks: the auditors' mails of admin changes
and audit checkpoints, and the checkpoint's log line.

Positive control: the simulator received the password exactly on the calls meant to
carry it, in the body, never in the URL. And a deliberate leak (a log line, a session
value, a cache entry) is found, so the search is shown to work.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import logging
import pickle
import secrets
import smtplib
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_string
from urllib.parse import quote, quote_plus

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape as django_escape

from accounts_app import rules
from accounts_app.alibaba import signing
from accounts_app.audit import Origin
from accounts_app.audit.testing import permit_test_flush
from accounts_app.background import delivery, retry
from accounts_app.background.models import NotificationDelivery, TaskFailure
from accounts_app.models import AccountRequest, CircuitBreaker
from accounts_app.services import fleet, lifecycle, tokens, workflow
from accounts_app.services.chat import chat_channel_add
from tests.conftest import empty_instance
from tests.fixtures.chat_fakes import ChatFakes
from tests.hostile_upstream import hostile_endpoint

# Committed, so that pg_dump (another connection) sees every row. serialized_rollback
# brings back the migrations' rows (groups, the audit chain head) the flush removes.
committed = pytest.mark.django_db(transaction=True, serialized_rollback=True)

Status = AccountRequest.Status
SPECIALS = "!@#$%^&*()_+-="


# --- The canary -------------------------------------------------------------------------


def make_canary(length: int = 24) -> str:
    """A random password the API accepts, with characters that every encoding changes."""
    pools = ["ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnpqrstuvwxyz", "23456789", SPECIALS]
    chars = [secrets.choice(pool) for pool in pools]
    # "&" changes under HTML escaping, "+" and "%" under URL quoting.
    chars += ["&", "+", "%"]
    alphabet = "".join(pools)
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    canary = "".join(chars)
    assert not rules.validate("AccountPassword", canary), canary
    return canary


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- The search ---------------------------------------------------------------------------


def base64_cores(data: bytes) -> set[str]:
    """What the base64 of `data` looks like inside any longer base64 text.

    Embedded at each of the three byte alignments, the characters that encode only
    `data` are the same whatever surrounds it: drop the edge groups, keep the core.
    """
    cores = set()
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * pad + data + b"\0\0\0").decode()
            start = 4 if pad else 0
            core = text[start : len(text) - 8]
            if len(core) >= 12:
                cores.add(core)
    return cores


def variants(secret: str) -> tuple[dict[str, str], dict[str, str]]:
    """(case-insensitive variants, case-sensitive variants) of a secret, by label."""
    quoted = quote(secret, safe="")
    insensitive = {
        "raw": secret,
        "URL-quoted": quoted,
        "URL-quoted, / kept": quote(secret),
        "form-encoded (quote_plus)": quote_plus(secret),
        "URL-quoted twice": quote(quoted, safe=""),
        "JSON-escaped": json.dumps(secret)[1:-1],
        "JSON-escaped, ASCII only": json.dumps(secret, ensure_ascii=True)[1:-1],
        "HTML-escaped": html.escape(secret),
        "HTML-escaped by Django": str(django_escape(secret)),
        "hex": secret.encode().hex(),
        "SHA-256": sha256(secret),
    }
    sensitive = {}
    if len(secret) >= 12:
        for index, core in enumerate(sorted(base64_cores(secret.encode()))):
            sensitive[f"base64 #{index}"] = core
    return {label: value.lower() for label, value in insensitive.items()}, sensitive


@dataclass
class Evidence:
    """Everything the application wrote, said or kept, by where it was found."""

    items: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, where: str, text: str) -> None:
        with self.lock:
            self.items.append((where, text))

    def kinds(self) -> set[str]:
        return {where.split(":")[0] for where, _ in self.items}


def find_leaks(secrets_by_label: dict[str, str], evidence: Evidence) -> list[str]:
    searches = [(label, *variants(secret)) for label, secret in secrets_by_label.items()]
    hits = []
    for where, text in evidence.items:
        lowered = text.lower()
        for label, insensitive, sensitive in searches:
            for form, needle in insensitive.items():
                if needle in lowered:
                    hits.append(f"{label} ({form}) in {where}")
            for form, needle in sensitive.items():
                if needle in text:
                    hits.append(f"{label} ({form}) in {where}")
    return hits


# --- Capture ------------------------------------------------------------------------------


class CaptureHandler(logging.Handler):
    def __init__(self, evidence: Evidence) -> None:
        super().__init__(level=logging.DEBUG)
        self.evidence = evidence
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        try:
            message = record.getMessage()
        except Exception as error:  # a broken format must not hide the record
            message = f"{record.msg!r} % {record.args!r} ({error})"
        parts = [message, repr(record.__dict__)]
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            parts.append(record.stack_info)
        self.evidence.add(f"log:{record.name}", "\n".join(parts))


@pytest.fixture
def every_log_record():
    """Every logger at DEBUG, propagating to one capturing handler on the root."""
    evidence = Evidence()
    handler = CaptureHandler(evidence)
    root = logging.getLogger()
    saved = [(root, root.level, root.propagate)]
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            saved.append((logger, logger.level, logger.propagate))
            logger.setLevel(logging.DEBUG)
            logger.propagate = True
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    logging.disable(logging.NOTSET)
    # SQL and its parameters, whatever settings.DEBUG says.
    connection.force_debug_cursor = True
    try:
        yield evidence, handler
    finally:
        root.removeHandler(handler)
        connection.force_debug_cursor = False
        for logger, level, propagate in saved:
            logger.setLevel(level)
            logger.propagate = propagate


class RecordingClient(Client):
    """A test client that keeps every response: status, headers, cookies, body."""

    def __init__(self, evidence: Evidence, **kwargs) -> None:
        super().__init__(**kwargs)
        self.evidence = evidence

    def request(self, **request):
        response = super().request(**request)
        where = f"response:{request.get('REQUEST_METHOD')} {request.get('PATH_INFO')}"
        body = b"".join(response.streaming_content) if response.streaming else response.content
        self.evidence.add(
            where,
            "\n".join(
                [
                    str(response.status_code),
                    response.serialize_headers().decode("latin-1"),
                    response.cookies.output(),
                    body.decode("utf-8", "replace"),
                ]
            ),
        )
        return response


@pytest.fixture
def committed_db():
    # The flush after this transactional test must pass the audit log's triggers.
    permit_test_flush()


# --- After the run: everything at rest -----------------------------------------------------


def database_dump() -> str:
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return "\n".join(connection.connection.iterdump())
    if connection.vendor == "postgresql":
        params = connection.settings_dict
        command = ["pg_dump", "--no-owner", "-h", params["HOST"] or "127.0.0.1"]
        command += ["-p", str(params["PORT"] or 5432), "-U", params["USER"], params["NAME"]]
        env = {"PGPASSWORD": params.get("PASSWORD") or "", "PATH": "/usr/bin:/bin"}
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout
    raise AssertionError(f"teach the canary suite to dump {connection.vendor}")


def sessions_decoded() -> Iterable[tuple[str, str]]:
    for session in Session.objects.all():
        yield (
            f"session:{session.session_key[:8]}",
            repr(SessionStore().decode(session.session_data)),
        )


def cache_contents() -> Iterable[tuple[str, str]]:
    for alias in settings.CACHES:
        backend = caches[alias]
        store = getattr(backend, "_cache", None)
        assert isinstance(store, dict), f"teach the canary suite to read the {alias} cache"
        yield f"cache:{alias}", f"{len(store)} entries"
        for key, value in list(store.items()):
            yield f"cache:{alias}", f"{key!r} {value!r} {unpickled(value)!r}"


def unpickled(value):
    try:
        return pickle.loads(value)  # noqa: S301 (this process's own cache)
    except Exception as error:
        return f"(not a pickle: {error})"


def mail_contents() -> Iterable[tuple[str, str]]:
    for index, message in enumerate(mail.outbox):
        parts = [message.subject, message.body, repr(message.extra_headers), str(message.to)]
        parts += [str(content) for content, _ in getattr(message, "alternatives", [])]
        parts += [repr(attachment) for attachment in message.attachments]
        wire = message.message().as_string()
        parts.append(wire)
        for part in message_from_string(wire).walk():
            payload = part.get_payload(decode=True)
            if payload:
                parts.append(payload.decode("utf-8", "replace"))
        yield f"mail:{index}:{message.subject[:60]}", "\n".join(parts)


def collect_at_rest(evidence: Evidence, capfd) -> None:
    evidence.add("db:dump", database_dump())
    for where, text in (*sessions_decoded(), *cache_contents(), *mail_contents()):
        evidence.add(where, text)
    out, err = capfd.readouterr()
    evidence.add("console:stdout", out)
    evidence.add("console:stderr", err)


# --- Scenarios ----------------------------------------------------------------------------


class Run:
    """One requester, one approver, and a fresh instance and request per scenario."""

    def __init__(self, estate, requester, approver, evidence: Evidence) -> None:
        self.estate = estate
        self.requester = requester
        self.approver = approver
        self.evidence = evidence
        self.client = self.signed_in_client()
        self.expected_calls: dict[str, int] = {}
        self.count = 0

    def signed_in_client(self, **kwargs) -> RecordingClient:
        client = RecordingClient(self.evidence, **kwargs)
        client.force_login(self.requester)
        return client

    def approved_request(self, scenario: str) -> AccountRequest:
        self.count += 1
        instance = empty_instance(self.estate, f"r-canary{self.count:04d}q")
        account_request = workflow.request_submit(
            requester=self.requester,
            instance=instance,
            account_name=f"canary{self.count}",
            account_privilege="RoleReadOnly",
            account_description="canary",
            account_type="Normal",
            justification=f"canary scenario {scenario}",
            origin=Origin.system("canary"),
        )
        workflow.request_approve(
            request_id=account_request.pk,
            approver=self.approver,
            comment="",
            origin=Origin.system("canary"),
        )
        return account_request

    def approved_reset(self, scenario: str) -> AccountRequest:
        """An approved password reset of an account made outside the dashboard."""
        self.count += 1
        instance = empty_instance(self.estate, f"r-canary{self.count:04d}q")
        self.estate.add_account(instance.instance_id, f"canary{self.count}")
        account_request = lifecycle.request_submit(
            kind=AccountRequest.Kind.RESET_PASSWORD,
            requester=self.requester,
            instance=instance,
            account_name=f"canary{self.count}",
            account_privilege="",
            account_description="",
            account_type="Normal",
            justification=f"canary reset {scenario}",
            origin=Origin.system("canary"),
        )
        workflow.request_approve(
            request_id=account_request.pk,
            approver=self.approver,
            comment="",
            origin=Origin.system("canary"),
        )
        return account_request

    def execute(self, account_request, password, confirm=None, *, client=None):
        """The POST, and after it the pages its redirect leads to (post/redirect/get:
        the result page and the messages it carries are searched too)."""
        client = client or self.client
        response = client.post(
            reverse("request_execute", args=[account_request.pk]),
            {
                "account_password": password,
                "account_password_confirm": password if confirm is None else confirm,
            },
        )
        execute_pages = {
            reverse(name, args=[account_request.pk])
            for name in ("request_execute", "request_execute_result")
        }
        if response.status_code == 302 and response.url in execute_pages:
            return client.get(response.url, follow=True)
        return response

    def expect(self, account_request, calls: int) -> None:
        self.expected_calls[account_request.instance.instance_id] = calls


def drive_every_path(run: Run, canary: str, extra_secrets: dict[str, str], settings) -> None:
    estate = run.estate

    # Success.
    ok = run.approved_request("success")
    assert "The account was created" in run.execute(ok, canary).content.decode()
    run.expect(ok, 1)

    # Every fault mode of the simulator, on CreateAccount.
    # Retried up to three attempts: answers that prove nothing was created.
    repeated = {"throttle": 3, "http500": 3, "http503": 3}
    # Never retried: the call may have arrived, so it is reconciled instead.
    once = {
        "html": 1,
        "reset": 1,
        "slow": 1,
        "drip": 1,
        "drip_headers": 1,
        "commit_then_timeout": 1,
        "malformed": 1,
    }
    delays = {"slow": 0.5, "commit_then_timeout": 3.0}
    for mode, calls in {**repeated, **once}.items():
        account_request = run.approved_request(mode)
        estate.add_fault(
            mode,
            action="CreateAccount",
            instance_id=account_request.instance.instance_id,
            count=0 if mode in repeated else 1,
            delay=delays.get(mode),
        )
        response = run.execute(account_request, canary)
        assert response.status_code == 200, mode
        run.expect(account_request, calls)
    estate.clear_faults()

    # Every validation error of the form, and a mismatched confirmation.
    invalid = run.approved_request("validation")
    for password, confirm in [
        (extra_secrets["too short"], None),
        (canary + canary[:10], None),  # too long
        (extra_secrets["one kind of character"], None),
        (canary + "~", None),  # a character the API refuses
        (canary + " ", None),
        (canary + "\x00", None),
        (canary + "密", None),
        ("", canary),  # no password
        (canary, ""),  # no confirmation
        (canary, extra_secrets["another password"]),  # mismatched confirmation
    ]:
        response = run.execute(invalid, password, confirm)
        assert response.status_code == 200
        assert response.context["form"].errors
    run.expect(invalid, 0)

    # An expired approval.
    expired = run.approved_request("expired")
    AccountRequest.objects.filter(pk=expired.pk).update(
        approved_at=timezone.now() - timedelta(hours=settings.APPROVAL_TTL_HOURS + 1)
    )
    assert "expired" in run.execute(expired, canary).content.decode()
    run.expect(expired, 0)

    # A concurrent second click: the first is still waiting for Alibaba.
    clicked = run.approved_request("double click")
    estate.add_fault(
        "slow", action="CreateAccount", instance_id=clicked.instance.instance_id, delay=1.0
    )
    first = threading.Thread(target=click_in_thread, args=(run, clicked, canary))
    first.start()
    deadline = time.monotonic() + 5
    while not estate.calls("CreateAccount") or not any(
        c["instance_id"] == clicked.instance.instance_id for c in estate.calls("CreateAccount")
    ):
        assert time.monotonic() < deadline, "the first click never reached the simulator"
        time.sleep(0.02)
    second = run.execute(clicked, canary)
    assert "nothing to create" in second.content.decode()
    first.join(timeout=10)
    clicked.refresh_from_db()
    assert clicked.status == Status.CREATED
    run.expect(clicked, 1)

    # A stale sign-in, a signed-out visitor and someone else's request.
    stale = run.approved_request("stale sign-in")
    session = run.client.session
    session["authenticated_at"] = time.time() - 3600
    session.save()
    assert run.execute(stale, canary).status_code == 302
    run.client = run.signed_in_client()
    assert run.execute(stale, canary, client=RecordingClient(run.evidence)).status_code == 302
    other = RecordingClient(run.evidence)
    other.force_login(run.approver)
    assert run.execute(stale, canary, client=other).status_code == 403
    run.expect(stale, 0)

    # The circuit breaker is open.
    unavailable = run.approved_request("breaker open")
    CircuitBreaker.objects.update_or_create(
        name="kvstore",
        defaults={"consecutive_failures": 99, "open_until": timezone.now() + timedelta(minutes=1)},
    )
    assert "unavailable right now" in run.execute(unavailable, canary).content.decode()
    CircuitBreaker.objects.all().delete()
    run.expect(unavailable, 0)


def drive_the_resets(run: Run, canary: str, extra_secrets: dict[str, str]) -> None:
    """A password reset: typed at execution like a creation, on the page and the API."""
    done = run.approved_reset("success")
    assert 'data-outcome="done"' in run.execute(done, canary).content.decode()
    run.expect(done, 1)

    unknown = run.approved_reset("unknown outcome")
    run.estate.add_fault(
        "commit_then_timeout",
        action="ResetAccountPassword",
        instance_id=unknown.instance.instance_id,
        delay=3.0,
    )
    assert run.execute(unknown, canary).status_code == 200
    run.expect(unknown, 1)

    invalid = run.approved_reset("validation")
    for password, confirm in [
        (extra_secrets["too short"], None),
        (canary + "~", None),
        (canary, extra_secrets["another password"]),
    ]:
        response = run.execute(invalid, password, confirm)
        assert response.context["form"].errors
    run.expect(invalid, 0)

    secret = tokens.token_create(
        user=run.requester, name="canary reset", scopes="read,execute", expires_in_days=1
    ).secret
    by_api = run.approved_reset("api")
    response = RecordingClient(run.evidence).post(
        f"/api/v1/requests/{by_api.pk}/execute",
        json.dumps({"account_password": canary}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "reset-1"},
    )
    assert response.json()["created"] is True
    run.expect(by_api, 1)


def drive_the_api(run: Run, canary: str, extra_secrets: dict[str, str], settings, monkeypatch):
    """The same password through the JSON API: success, a repeat, a reused key, every
    validation error, a password of the wrong type, a token without the scope, and a crash."""
    secret = tokens.token_create(
        user=run.requester, name="canary", scopes="read,execute", expires_in_days=1
    ).secret
    api = RecordingClient(run.evidence, raise_request_exception=False)

    def execute(account_request, password, key, *, token=secret):
        return api.post(
            f"/api/v1/requests/{account_request.pk}/execute",
            json.dumps({"account_password": password}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        )

    ok = run.approved_request("api success")
    assert execute(ok, canary, "api-1").json()["created"] is True
    assert execute(ok, canary, "api-1").status_code == 200  # the first outcome, no second call
    run.expect(ok, 1)

    reused = run.approved_request("api reused key")
    assert execute(reused, canary, "api-1").status_code == 422
    for index, password in enumerate(
        [
            extra_secrets["too short"],
            canary + canary[:10],
            extra_secrets["one kind of character"],
            canary + "~",
            canary + "密",
            [canary],
            {"value": canary},
        ]
    ):
        assert execute(reused, password, f"api-invalid-{index}").status_code == 400
    reader = tokens.token_create(
        user=run.requester, name="reader", scopes="read", expires_in_days=1
    ).secret
    assert execute(reused, canary, "api-scope", token=reader).status_code == 403
    run.expect(reused, 0)

    settings.DEBUG = False
    settings.ADMINS = ["ops@example.com"]
    crashing = run.approved_request("api crash")

    def crash(params):
        raise RuntimeError("forced failure inside the signing of CreateAccount")

    with monkeypatch.context() as patch:
        patch.setattr(signing, "form_encode", crash)
        assert execute(crashing, canary, "api-crash").status_code == 500
    run.expect(crashing, 0)
    assert any("api/v1" in m.subject for m in mail.outbox), "the admins got no error report"


def drive_a_fleet(run: Run, canary: str) -> None:
    """One password for a fleet: typed on the fleet page, run over three instances (one
    throttled then retried, one of unknown outcome reconciled, one refused), then the
    refused one again through the API. The password lives in one request per run."""
    instances = [empty_instance(run.estate, f"r-canaryfleet{n}q") for n in range(3)]
    row = fleet.fleet_submit(
        requester=run.requester,
        instances=instances,
        account_name="canaryfleet",
        account_privilege="RoleReadOnly",
        account_description="canary",
        account_type="Normal",
        justification="canary scenario fleet",
        origin=Origin.system("canary"),
    )
    workflow.request_approve(
        request_id=row.pk, approver=run.approver, comment="", origin=Origin.system("canary")
    )
    ids = [instance.instance_id for instance in instances]
    run.estate.add_fault("throttle", action="CreateAccount", instance_id=ids[0])
    run.estate.add_fault("commit_then_timeout", action="CreateAccount", instance_id=ids[1], delay=3)
    run.estate.add_fault(
        "error", action="CreateAccount", instance_id=ids[2], code="IncorrectDBInstanceState"
    )
    page = run.client.post(
        reverse("fleet_execute", args=[row.pk]),
        {"account_password": canary, "account_password_confirm": canary},
        follow=True,  # post/redirect/get: the result page, read from the targets
    )
    assert page.status_code == 200
    assert page.redirect_chain == [(reverse("fleet_execute_result", args=[row.pk]), 302)]
    run.estate.clear_faults()
    secret = tokens.token_create(
        user=run.requester, name="canary fleet", scopes="read,execute", expires_in_days=1
    ).secret
    again = RecordingClient(run.evidence).post(
        f"/api/v1/requests/{row.pk}/execute",
        json.dumps({"account_password": canary}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "fleet-again"},
    )
    assert again.json()["created"] is True, again.content
    run.expected_calls.update({ids[0]: 2, ids[1]: 1, ids[2]: 2})


def click_in_thread(run: Run, account_request, canary: str) -> None:
    connection.force_debug_cursor = True
    try:
        client = RecordingClient(run.evidence)
        client.cookies = run.client.cookies
        run.execute(account_request, canary, client=client)
    finally:
        connections.close_all()


def crash_inside_the_execute_view(run: Run, canary: str, settings, monkeypatch) -> None:
    """An unhandled exception deep in the call, the password in every frame's locals."""
    settings.DEBUG = False
    settings.ADMINS = ["ops@example.com"]
    crashing = run.approved_request("crash")

    def crash(params):
        raise RuntimeError("forced failure inside the signing of CreateAccount")

    client = run.signed_in_client(raise_request_exception=False)
    with monkeypatch.context() as patch:
        patch.setattr(signing, "form_encode", crash)
        response = run.execute(crashing, canary, client=client)
    assert response.status_code == 500
    run.expect(crashing, 0)
    reports = [m for m in mail.outbox if "ERROR" in m.subject and m.to == settings.ADMINS]
    assert reports, "the admins got no error report"
    html_report = next(
        content
        for report in reports
        for content, kind in getattr(report, "alternatives", [])
        if kind == "text/html"
    )
    # The report is a real one: the frames of the call are in it, their values hidden.
    assert "form_encode" in html_report and "sensitive_variables_wrapper" in html_report
    assert "********************" in html_report


def run_the_tasks(settings, monkeypatch) -> None:
    """The queued notifications: each fails for good once (dead letter), then is sent."""
    settings.TASKS_MAX_ATTEMPTS = 1

    def refuse(*args, **kwargs):
        raise smtplib.SMTPException("the mail server refused")

    with monkeypatch.context() as patch:
        patch.setattr(delivery, "send_mail", refuse)
        call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)
    failures = list(TaskFailure.objects.all())
    assert failures, "no notification was queued"
    for failure in failures:
        retry.retry_failure(failure)
    call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)
    mails = NotificationDelivery.objects.exclude(recipient__startswith="chat:")
    assert mails.filter(sent_at__isnull=False).count() == len(failures)


CHAT_KINDS = ("dingtalk", "feishu", "wecom", "slack")


def add_chat_channels(fakes: ChatFakes) -> dict[str, str]:
    """A channel of each platform; returns their credentials, to search for."""
    credentials = {}
    for kind in CHAT_KINDS:
        token, secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        chat_channel_add(name=kind, kind=kind, url=fakes.add(kind, token, secret), secret=secret)
        credentials |= {f"the {kind} webhook token": token, f"the {kind} secret": secret}
    return credentials


def collect_chat_posts(fakes: ChatFakes, evidence: Evidence) -> None:
    """What the platforms received: every one accepted, every event of the run there."""
    posts = fakes.posts()
    assert {post.kind for post in posts} == set(CHAT_KINDS)
    assert all(post.accepted for post in posts), [post.reason for post in posts]
    for index, post in enumerate(posts):
        evidence.add(f"chat:{post.kind}:{index}", post.raw.decode())


def crash_with_debug_on(run: Run, canary: str, settings, monkeypatch) -> None:
    """The same crash with DEBUG on: Django's debug page is a response like any other."""
    settings.DEBUG = True
    crashing = run.approved_request("crash, debug on")

    def crash(params):
        raise RuntimeError("forced failure inside the signing of CreateAccount, DEBUG on")

    client = run.signed_in_client(raise_request_exception=False)
    with monkeypatch.context() as patch:
        patch.setattr(signing, "form_encode", crash)
        response = run.execute(crashing, canary, client=client)
    settings.DEBUG = False
    assert response.status_code == 500
    assert b"forced failure" in response.content  # the debug page itself
    run.expect(crashing, 0)


def an_upstream_that_echoes_the_password(run: Run, canary: str, settings) -> None:
    """CreateAccount refused with the password echoed back, in every field of the
    answer and several encodings (issue 23, finding 4)."""
    echoes = " ".join(
        [
            quote(canary, safe="").lower(),
            html.escape(canary),
            canary.encode().hex(),
            base64.b64encode(canary.encode()).decode(),
            " ".join(canary),
        ]
    )

    def echo(action: str, data: dict) -> dict:
        if action != "CreateAccount":
            return data
        return {"RequestId": canary, "Code": f"Bad.{canary}", "Message": f"Refused {echoes}"}

    echoed = run.approved_request("echoing upstream")
    endpoint = settings.KVSTORE_ENDPOINT
    with hostile_endpoint(endpoint, echo) as hostile:
        settings.KVSTORE_ENDPOINT = hostile
        response = run.execute(echoed, canary)
    settings.KVSTORE_ENDPOINT = endpoint
    assert response.status_code == 200
    echoed.refresh_from_db()
    assert echoed.status == Status.FAILED
    run.expect(echoed, 1)


def admin_changes_and_a_checkpoint(run: Run) -> None:
    """The new sinks: the auditors' mails of admin changes and of a checkpoint, and the
    checkpoint's log line (issue 23, finding 1 and "Also")."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    auditor = get_user_model().objects.create_user(
        "canary_auditor", email="auditor@example.com", password=make_canary()
    )
    auditor.groups.add(Group.objects.get(name="Auditors"))
    call_command("publish_audit_checkpoint", stdout=io.StringIO())
    # Both mails are queued: run_the_tasks sends them, and the run checks they went.


# The calls that carry a password: a creation and a reset.
PASSWORD_ACTIONS = ("CreateAccount", "ResetAccountPassword")


def positive_control(run: Run, canary: str) -> None:
    """Each call meant to carry the password carried it once, in the body."""
    digest = sha256(canary)
    calls = run.estate.calls()
    creates = [call for call in calls if call["action"] in PASSWORD_ACTIONS]
    by_instance: dict[str, int] = {}
    for call in creates:
        by_instance[call["instance_id"]] = by_instance.get(call["instance_id"], 0) + 1
        assert call["params"].get("AccountPasswordSha256") == digest
        assert "AccountPassword" in call["body_keys"]
        assert "AccountPassword" not in call["query_keys"]
    expected = {instance: n for instance, n in run.expected_calls.items() if n}
    assert by_instance == expected
    for call in calls:
        if call["action"] not in PASSWORD_ACTIONS:
            assert "AccountPasswordSha256" not in call["params"], call["action"]
            assert digest not in json.dumps(call)


# --- The tests ------------------------------------------------------------------------------


@pytest.fixture
def canary_run(committed_db, estate, requester, approver, every_log_record, settings):
    settings.KVSTORE_BREAKER_THRESHOLD = 1000  # the faults below must all reach the simulator
    # Notifications are queued in the database and run by the worker (run_the_tasks).
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    for user in (requester, approver):
        user.email = f"{user.username}@example.com"
        user.save()
    evidence, handler = every_log_record
    return Run(estate, requester, approver, evidence), handler


@pytest.fixture
def chat_fakes():
    server = ChatFakes().start()
    yield server
    server.stop()


@committed
def test_no_password_comes_to_rest_on_any_path(
    canary_run, settings, monkeypatch, capfd, chat_fakes
):
    run, handler = canary_run
    chat_credentials = add_chat_channels(chat_fakes)
    canary = make_canary()
    extra = {
        "too short": make_canary(24)[:7],
        "one kind of character": "".join(
            secrets.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(20)
        ),
        "another password": make_canary(),
    }
    drive_every_path(run, canary, extra, settings)
    drive_the_resets(run, canary, extra)
    drive_the_api(run, canary, extra, settings, monkeypatch)
    drive_a_fleet(run, canary)
    crash_inside_the_execute_view(run, canary, settings, monkeypatch)
    crash_with_debug_on(run, canary, settings, monkeypatch)
    an_upstream_that_echoes_the_password(run, canary, settings)
    admin_changes_and_a_checkpoint(run)
    run_the_tasks(settings, monkeypatch)
    assert any("Audit checkpoint" in m.subject for m in mail.outbox)
    assert any("canary_auditor" in m.body for m in mail.outbox)
    positive_control(run, canary)
    collect_chat_posts(chat_fakes, run.evidence)
    collect_at_rest(run.evidence, capfd)
    dump = next(text for where, text in run.evidence.items if where == "db:dump")
    # The task tables were dumped with rows in them: what the search covered.
    for table_text in ("accounts_app.background.delivery.send_notification", "SMTPException"):
        assert table_text in dump, f"no {table_text} in the task tables"

    # The capture saw what it should have: SQL with parameters, the client, the error.
    assert {"log", "response", "db", "session", "mail", "cache", "chat"} <= run.evidence.kinds()
    wheres = {where for where, _ in run.evidence.items}
    for logger in (
        "log:django.db.backends",
        "log:django.request",
        "log:urllib3.connectionpool",
        "log:accounts_app.audit.checkpoint",
    ):
        assert logger in wheres, f"nothing captured from {logger}"
    assert handler.count > 1000

    leaks = find_leaks({"the canary": canary, **extra, **chat_credentials}, run.evidence)
    assert leaks == [], "\n".join(leaks)


@committed
def test_the_search_finds_a_password_that_is_logged_or_kept(
    canary_run, settings, monkeypatch, capfd
):
    """Deliberate regression: a build that logs or keeps the password fails the suite."""
    run, _ = canary_run
    canary = make_canary()
    real_execute = workflow.request_execute

    def leaky_execute(**kwargs):
        password = kwargs["account_password"]
        logging.getLogger("accounts_app.services.workflow").debug("password=%s", password)
        session = SessionStore()
        session["debug"] = password.encode().hex()
        session.save()
        caches["default"].set("last", base64.b64encode(b"pw:" + password.encode()).decode())
        return real_execute(**kwargs)

    def leaky_task(**kwargs):
        # A task given the password: the search finds it in the task table.
        delivery.send_notification.enqueue(
            event_key="leak",
            kind="submitted",
            request_id=0,
            recipient="x@example.com",
            extra={"secret": kwargs["account_password"]},
        )
        return leaky_execute(**kwargs)

    monkeypatch.setattr(workflow, "request_execute", leaky_task)
    account_request = run.approved_request("leaky")
    assert "The account was created" in run.execute(account_request, canary).content.decode()
    collect_at_rest(run.evidence, capfd)

    leaks = find_leaks({"the canary": canary}, run.evidence)
    assert any("(raw) in log:accounts_app.services.workflow" in leak for leak in leaks), leaks
    assert any("(hex) in session:" in leak for leak in leaks), leaks
    assert any("(raw) in db:dump" in leak for leak in leaks), leaks
    assert any("(base64" in leak and "in cache:default" in leak for leak in leaks), leaks


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: f"before {s} after",
        lambda s: f"/path?p={quote(s, safe='')}&x=1",
        lambda s: f"AccountPassword={quote_plus(s)}",
        lambda s: quote(quote(s, safe=""), safe=""),
        lambda s: json.dumps({"p": s}),
        lambda s: f"<p>{html.escape(s)}</p>",
        lambda s: s.encode().hex().upper(),
        lambda s: base64.b64encode(b"x" + s.encode() + b"yz").decode(),
        lambda s: base64.urlsafe_b64encode(b"xy" + s.encode()).decode(),
        lambda s: base64.b64encode(s.encode()).decode(),
        lambda s: sha256(s),
    ],
)
def test_the_search_recognises_every_encoding(encode):
    canary = make_canary()
    evidence = Evidence()
    evidence.add("sample", encode(canary))
    evidence.add("clean", encode(make_canary()))
    hits = find_leaks({"the canary": canary}, evidence)
    assert hits and all(hit.endswith("in sample") for hit in hits)


# --- Signing in through the company's IdP ----------------------------------------------


@committed
def test_no_code_token_or_client_secret_of_an_idp_sign_in_comes_to_rest(
    committed_db, every_log_record, sso, make_user, monkeypatch, capfd
):
    from urllib.parse import parse_qs, urlsplit

    from accounts_app.sso.oidc import DashboardOIDCAdapter
    from tests.fixtures.oidc_provider import CLIENT_SECRET
    from tests.sso_support import callback_from_idp

    evidence, _ = every_log_record
    make_user("someone")
    seen: dict[str, str] = {}
    fetch_user_info, decode_id_token = (
        DashboardOIDCAdapter._fetch_user_info,
        DashboardOIDCAdapter._decode_id_token,
    )

    def recording_fetch(self, access_token):
        seen["the access token"] = access_token
        return fetch_user_info(self, access_token)

    def recording_decode(self, app, id_token):
        seen["the ID token"] = id_token
        return decode_id_token(self, app, id_token)

    monkeypatch.setattr(DashboardOIDCAdapter, "_fetch_user_info", recording_fetch)
    monkeypatch.setattr(DashboardOIDCAdapter, "_decode_id_token", recording_decode)
    client = RecordingClient(evidence)
    callback = callback_from_idp(client, "bob")
    seen["the authorization code"] = parse_qs(urlsplit(callback).query)["code"][0]
    assert client.get(callback).status_code == 302
    # A refused answer too: a replay of the same callback.
    assert client.get(callback).status_code == 401
    client.get(reverse("preferences"))
    client.post(reverse("logout"))
    collect_at_rest(evidence, capfd)

    assert set(seen) == {"the access token", "the ID token", "the authorization code"}
    dump = next(text for where, text in evidence.items if where == "db:dump")
    assert "roles_changed" in dump and "login.idp_refused" in dump  # what the search covered
    leaks = find_leaks({**seen, "the client secret": CLIENT_SECRET}, evidence)
    assert leaks == [], "\n".join(leaks)
