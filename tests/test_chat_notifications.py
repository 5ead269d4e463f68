"""Chat notifications through real parts: the database queue and django-tasks-db's
worker, posting over loopback to fakes of DingTalk, Feishu/Lark, WeCom and Slack that
check signatures as the platforms document them (tests/fixtures/chat_fakes.py)."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts_app import notifications
from accounts_app.background import retry
from accounts_app.background.models import NotificationDelivery, TaskFailure
from accounts_app.chat.models import ChatChannel
from accounts_app.models import AccountRequest, Decision
from accounts_app.services.chat import chat_channel_add
from tests.builders import instance_row, request_row
from tests.conftest import cast_member
from tests.fixtures.chat_fakes import ChatFakes
from tests.test_tasks import DATABASE_BACKEND, run_worker

Status = AccountRequest.Status
KINDS = ("dingtalk", "feishu", "wecom", "slack")
SECRETS = {"dingtalk": "SECdingtalk-signing-secret", "feishu": "feishu-signing-secret"}


@pytest.fixture
def fakes():
    server = ChatFakes(hang=1.0).start()
    yield server
    server.stop()


@pytest.fixture
def queue(settings, db):
    settings.TASKS = DATABASE_BACKEND
    settings.TASKS_RETRY_BACKOFF = 0
    settings.CHAT_TIMEOUT = 0.3
    return settings


def add_channel(fakes, kind: str, *, secret: str | None = None, **options) -> ChatChannel:
    url = fakes.add(kind, f"token-{kind}", SECRETS.get(kind, ""))
    return chat_channel_add(
        name=options.pop("name", kind),
        kind=kind,
        url=url,
        secret=SECRETS.get(kind, "") if secret is None else secret,
        **options,
    )


@pytest.fixture
def every_channel(fakes, queue):
    return [add_channel(fakes, kind) for kind in KINDS]


@pytest.fixture
def pending(requester, db):
    instance = instance_row("r-chat0001", name="orders-cache", region_id="cn-shanghai")
    return request_row(requester, instance, "report_reader", justification="Monthly reports.")


def the_request_in(pending, status: str) -> AccountRequest:
    AccountRequest.objects.filter(pk=pending.pk).update(status=status)
    pending.refresh_from_db()
    return pending


EVENTS = {
    "submitted": lambda r, approver: notifications.request_submitted(r, recipients=[]),
    "approved": lambda r, approver: notifications.request_decided(
        r, verdict="approve", approver=approver
    ),
    "rejected": lambda r, approver: notifications.request_decided(
        r, verdict="reject", approver=approver
    ),
    "created": lambda r, approver: notifications.request_finished(
        the_request_in(r, Status.CREATED)
    ),
    "failed": lambda r, approver: notifications.request_finished(the_request_in(r, Status.FAILED)),
    "outcome_unknown": lambda r, approver: notifications.request_needs_reconciliation(r),
    "expired": lambda r, approver: notifications.request_expired(r),
}
HEADLINE_WORDS = {
    "submitted": "awaits approval",
    "approved": "was approved",
    "rejected": "was rejected",
    "created": "was created",
    "failed": "failed",
    "outcome_unknown": "unknown outcome",
    "expired": "expired",
}


def text_of(post) -> str:
    return json.dumps(post.body, ensure_ascii=False)


@pytest.mark.parametrize("event", list(EVENTS))
def test_each_event_reaches_each_channel_signed_as_its_platform_documents(
    event, every_channel, fakes, pending, approver
):
    EVENTS[event](pending, approver)
    run_worker()

    posts = fakes.posts()
    assert sorted(post.kind for post in posts) == sorted(KINDS)
    assert [post.reason for post in posts if not post.accepted] == []
    for post in posts:
        assert HEADLINE_WORDS[event] in text_of(post)
    # Signed where the platform signs: DingTalk in the query, Feishu in the body.
    assert {"timestamp", "sign"} <= set(fakes.posts("dingtalk")[0].query)
    assert {"timestamp", "sign"} <= set(fakes.posts("feishu")[0].body)
    assert NotificationDelivery.objects.filter(
        recipient__startswith="chat:", sent_at__isnull=False
    ).count() == len(KINDS)


def test_each_platform_gets_its_own_rich_format_with_the_request_facts(
    every_channel, fakes, pending, approver
):
    Decision.objects.create(
        request=pending, approver=approver, requester=pending.requester, verdict="approve"
    )
    AccountRequest.objects.filter(pk=pending.pk).update(approvals_required=2)
    pending.refresh_from_db()
    notifications.request_decided(pending, verdict="approve", approver=approver)
    run_worker()

    formats = {
        "dingtalk": ("msgtype", "actionCard"),
        "feishu": ("msg_type", "interactive"),
        "wecom": ("msgtype", "markdown"),
    }
    for kind, (key, value) in formats.items():
        assert fakes.posts(kind)[0].body[key] == value
    assert fakes.posts("slack")[0].body["blocks"][0]["type"] == "header"
    for post in fakes.posts():
        text = text_of(post)
        for fact in ("orders-cache", "r-chat0001", "cn-shanghai", "report_reader", "RoleReadOnly"):
            assert fact in text, (post.kind, fact)
        assert "Monthly reports." in text
        assert "1 of 2 (bob)" in text
        assert f"/requests/{pending.pk}/" in text


def test_a_channel_in_chinese_speaks_chinese(fakes, queue, pending):
    add_channel(fakes, "feishu", language="zh-hans")
    notifications.request_submitted(pending, recipients=[])
    run_worker()

    text = text_of(fakes.posts("feishu")[0])
    assert "等待审批" in text and "权限" in text
    assert "awaits approval" not in text


def test_a_wrong_secret_is_refused_by_the_platform_and_dead_lettered(fakes, queue, pending):
    queue.TASKS_MAX_ATTEMPTS = 3
    for kind in ("dingtalk", "feishu"):
        add_channel(fakes, kind, secret="not-the-secret")
    notifications.request_submitted(pending, recipients=[])
    run_worker()

    reasons = {post.kind: post.reason for post in fakes.posts()}
    assert "sign not match" in reasons["dingtalk"]
    assert "sign match fail" in reasons["feishu"]
    errors = sorted(failure.error for failure in TaskFailure.objects.all())
    assert len(errors) == 2
    assert "310000" in errors[0] and "19021" in errors[1]
    # A refused signature is not an outage: it fails at once, not after every retry.
    assert len(fakes.posts("dingtalk")) == len(fakes.posts("feishu")) == 1
    assert {failure.attempts for failure in TaskFailure.objects.all()} == {1}
    for error in errors:
        assert "token-" not in error and "not-the-secret" not in error
    pending.refresh_from_db()
    assert pending.status == Status.PENDING  # the workflow never waits on chat


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("answer", ["5xx", "rate_limit", "timeout"])
def test_a_passing_failure_is_retried_until_the_message_goes_through(
    kind, answer, fakes, queue, pending
):
    queue.TASKS_MAX_ATTEMPTS = 3
    add_channel(fakes, kind)
    fakes.fail_next(kind, answer, times=2)
    notifications.request_submitted(pending, recipients=[])
    run_worker()

    assert [post.accepted for post in fakes.posts(kind)] == [False, False, True]
    assert TaskFailure.objects.count() == 0
    assert NotificationDelivery.objects.get(recipient__startswith="chat:").sent_at


def test_the_last_failure_is_a_failed_task_that_staff_can_retry(fakes, queue, pending):
    queue.TASKS_MAX_ATTEMPTS = 2
    add_channel(fakes, "wecom")
    fakes.fail_next("wecom", "rate_limit", times=2)
    notifications.request_submitted(pending, recipients=[])
    run_worker()

    failure = TaskFailure.objects.get()
    assert "45009" in failure.error and failure.attempts == 2
    assert "token-wecom" not in json.dumps(failure.arguments)
    retry.retry_failure(failure)
    run_worker()
    assert [post.accepted for post in fakes.posts("wecom")] == [False, False, True]


def test_a_message_goes_once_however_often_its_task_runs(fakes, queue, pending):
    add_channel(fakes, "slack")
    notifications.request_submitted(pending, recipients=[])
    notifications.request_submitted(pending, recipients=[])  # the same event, enqueued again
    run_worker()
    assert len(fakes.posts("slack")) == 1


def test_channels_get_only_their_events_and_regions(fakes, queue, pending, approver):
    add_channel(fakes, "slack", events=["approved"])
    add_channel(fakes, "wecom", regions=["cn-hangzhou"])
    notifications.request_submitted(pending, recipients=[])
    notifications.request_decided(pending, verdict="approve", approver=approver)
    run_worker()

    assert ["was approved" in text_of(post) for post in fakes.posts("slack")] == [True]
    assert fakes.posts("wecom") == []  # the request is in cn-shanghai


def test_a_removed_or_inactive_channel_gets_nothing_queued_before(fakes, queue, pending):
    add_channel(fakes, "slack")
    add_channel(fakes, "wecom")
    notifications.request_submitted(pending, recipients=[])
    ChatChannel.objects.filter(kind="slack").delete()
    ChatChannel.objects.filter(kind="wecom").update(is_active=False)
    run_worker()
    assert fakes.posts() == [] and TaskFailure.objects.count() == 0


# --- Credentials -----------------------------------------------------------------------


def test_webhook_urls_and_secrets_are_kept_encrypted(fakes, queue):
    add_channel(fakes, "dingtalk")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_app_chatchannel")
        stored = repr(cursor.fetchall())
    assert "token-dingtalk" not in stored and SECRETS["dingtalk"] not in stored
    channel = ChatChannel.objects.get()
    assert "token-dingtalk" in channel.url and channel.secret == SECRETS["dingtalk"]


def test_a_channel_cannot_be_added_without_an_encryption_key(fakes, queue):
    queue.CHAT_ENCRYPTION_KEYS = []
    with pytest.raises(Exception, match="CHAT_ENCRYPTION_KEYS"):
        add_channel(fakes, "slack")


def test_the_command_adds_lists_masked_and_removes(fakes, queue, capsys):
    url = fakes.add("dingtalk", "token-dingtalk", SECRETS["dingtalk"])
    call_command(
        "chat_channel",
        "add",
        "--name=dba",
        "--kind=dingtalk",
        f"--url={url}",
        f"--secret={SECRETS['dingtalk']}",
        "--language=zh-hans",
        "--events=submitted,approved",
    )
    call_command("chat_channel", "list")
    out = capsys.readouterr().out
    assert "dba\tdingtalk\thttp://127.0.0.1" in out and "submitted,approved" in out
    assert "token-dingtalk" not in out and SECRETS["dingtalk"] not in out
    assert "••••et" in out

    with pytest.raises(CommandError, match="Unknown events: sent"):
        call_command(
            "chat_channel", "add", "--name=x", "--kind=slack", f"--url={url}", "--events=sent"
        )
    call_command("chat_channel", "remove", "dba")
    assert ChatChannel.objects.count() == 0
    with pytest.raises(CommandError):
        call_command("chat_channel", "remove", "dba")


def test_staff_add_a_channel_in_the_admin_and_never_see_its_credentials_again(
    make_user, fakes, queue
):
    staff = cast_member(make_user, "superuser_requester")
    url = fakes.add("dingtalk", "token-dingtalk", SECRETS["dingtalk"])
    admin = Client()
    admin.force_login(staff)
    response = admin.post(
        reverse("admin:accounts_app_chatchannel_add"),
        {
            "name": "dba",
            "kind": "dingtalk",
            "webhook_url": url,
            "signing_secret": SECRETS["dingtalk"],
            "language": "zh-hans",
            "events": ["submitted", "expired"],
            "regions": "cn-shanghai, cn-hangzhou",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    channel = ChatChannel.objects.get()
    assert channel.url == url and channel.secret == SECRETS["dingtalk"]
    assert channel.events == ["submitted", "expired"]
    assert channel.regions == ["cn-shanghai", "cn-hangzhou"]

    pages = [
        admin.get(reverse("admin:accounts_app_chatchannel_changelist")),
        admin.get(reverse("admin:accounts_app_chatchannel_change", args=[channel.pk])),
    ]
    for page in pages:
        html = page.content.decode()
        assert "http://127.0.0.1:" in html  # the masked URL: scheme and host
        assert "token-dingtalk" not in html and SECRETS["dingtalk"] not in html

    # Saved again with the credentials left empty: they are kept.
    admin.post(
        reverse("admin:accounts_app_chatchannel_change", args=[channel.pk]),
        {"name": "dba", "kind": "dingtalk", "language": "en", "regions": "", "is_active": "on"},
    )
    channel.refresh_from_db()
    assert channel.url == url and channel.language == "en" and channel.regions == []
