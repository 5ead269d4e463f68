"""Approving from chat: Slack interactivity and Feishu/Lark card callbacks, sent over
the test client as the platforms send them (signed by tests/fixtures/chat_fakes.py,
written from their docs), with Slack's response_url served by the chat fakes."""

from __future__ import annotations

import json
import re
import time

import pytest
from django.test import Client
from django.urls import reverse

from accounts_app.audit.messages import event_text
from accounts_app.chat import messages
from accounts_app.chat.models import ChatChannel, ChatIdentity
from accounts_app.models import AccountRequest, AuditEvent, Decision
from accounts_app.services.chat import chat_channel_add
from tests.builders import instance_row, request_row
from tests.fixtures.chat_fakes import (
    ChatFakes,
    feishu_callback,
    feishu_card_action,
    feishu_encrypt,
    slack_block_action,
    slack_interaction,
    slack_response_url,
)

Status = AccountRequest.Status
Action = AuditEvent.Action
SLACK_SECRET = "slack-app-signing-secret"
FEISHU_KEY = "feishu-encrypt-key"
FEISHU_TOKEN = "feishu-verification-token"


@pytest.fixture(autouse=True)
def chat_settings(settings):
    settings.SLACK_SIGNING_SECRET = SLACK_SECRET
    settings.FEISHU_ENCRYPT_KEY = FEISHU_KEY
    settings.FEISHU_VERIFICATION_TOKEN = FEISHU_TOKEN
    settings.CHAT_APPROVABLE_PRIVILEGES = ["RoleReadOnly"]
    settings.CHAT_TIMEOUT = 1.0


@pytest.fixture
def fakes():
    server = ChatFakes().start()
    yield server
    server.stop()


@pytest.fixture
def channel(fakes, db):
    return chat_channel_add(
        name="dba-slack", kind="slack", url=fakes.add("slack", "T/B/X"), language="en"
    )


@pytest.fixture
def pending(requester, db):
    instance = instance_row("r-chat0002", name="orders-cache")
    return request_row(requester, instance, "report_reader")


def link(user, platform: str, external_id: str) -> None:
    ChatIdentity.objects.create(user=user, platform=platform, external_id=external_id)


def platform_client() -> Client:
    """Nobody signed in, CSRF enforced: as the platform calls."""
    return Client(enforce_csrf_checks=True)


def click_slack(account_request, user_id: str, fakes, channel=None, verdict="approve", **sign):
    value = f"{account_request.pk}:{channel.pk if channel else ''}"
    payload = slack_block_action(user_id, verdict, value, slack_response_url(fakes))
    body, headers = slack_interaction(sign.pop("secret", SLACK_SECRET), payload, **sign)
    return body, headers


def post_slack(body: bytes, headers: dict):
    return platform_client().post(
        reverse("chat_slack"),
        body,
        content_type=headers.pop("Content-Type"),
        headers=headers,
    )


def denials() -> list[str]:
    """What the refusals say, in English (the catalogue's own words)."""
    return [
        event_text(event)
        for event in AuditEvent.objects.filter(action=Action.PERMISSION_DENIED).order_by("seq")
    ]


def status_of(account_request) -> str:
    account_request.refresh_from_db()
    return account_request.status


# --- Slack ------------------------------------------------------------------------------


def test_a_linked_approver_approves_from_slack_and_the_card_is_replaced(
    pending, approver, fakes, channel
):
    link(approver, "slack", "U0BOB")
    response = post_slack(*click_slack(pending, "U0BOB", fakes, channel))

    assert response.status_code == 200
    assert status_of(pending) == Status.APPROVED
    event = AuditEvent.objects.get(action=Action.REQUEST_APPROVED)
    assert event.actor == approver
    assert "Slack (dba-slack)" in event.user_agent and "U0BOB" in event.user_agent
    assert "Decided from Slack (dba-slack)" in event.comment
    [update] = fakes.posts("slack_response")
    assert update.body["replace_original"] is True
    text = json.dumps(update.body)
    assert "was approved" in text and "approved by bob from Slack (dba-slack)" in text
    assert '"action_id": "approve"' not in text  # no buttons once decided
    assert denials() == []


def test_a_rejection_from_slack_rejects_with_its_channel_in_the_comment(
    pending, approver, fakes, channel
):
    link(approver, "slack", "U0BOB")
    post_slack(*click_slack(pending, "U0BOB", fakes, channel, verdict="reject"))

    assert status_of(pending) == Status.REJECTED
    assert Decision.objects.get().comment == "Decided from Slack (dba-slack)"


def test_a_tampered_body_is_refused_and_audited(pending, approver, fakes, channel):
    link(approver, "slack", "U0BOB")
    body, headers = click_slack(pending, "U0BOB", fakes, channel)
    tampered = body.replace(b"approve", b"reject")
    assert tampered != body

    assert post_slack(tampered, headers).status_code == 403
    assert status_of(pending) == Status.PENDING
    assert denials() == ["Refused from Slack: signature does not match"]


def test_a_wrong_signing_secret_is_refused(pending, approver, fakes, channel):
    link(approver, "slack", "U0BOB")
    assert (
        post_slack(*click_slack(pending, "U0BOB", fakes, channel, secret="guess")).status_code
        == 403
    )
    assert status_of(pending) == Status.PENDING


def test_an_old_timestamp_is_refused_even_when_signed(pending, approver, fakes, channel):
    link(approver, "slack", "U0BOB")
    old = int(time.time()) - 6 * 60
    response = post_slack(*click_slack(pending, "U0BOB", fakes, channel, timestamp=old))

    assert response.status_code == 403
    assert status_of(pending) == Status.PENDING
    assert denials() == ["Refused from Slack: timestamp missing or older than five minutes"]


def test_a_replayed_callback_is_refused_and_audited(
    pending, approver, second_approver, fakes, channel
):
    link(approver, "slack", "U0BOB")
    AccountRequest.objects.filter(pk=pending.pk).update(approvals_required=2)
    body, headers = click_slack(pending, "U0BOB", fakes, channel)
    assert post_slack(body, dict(headers)).status_code == 200

    assert post_slack(body, dict(headers)).status_code == 403
    assert Decision.objects.count() == 1
    assert denials() == ["Refused from Slack: replayed"]


def test_an_unlinked_chat_user_gets_a_code_that_links_them_once_from_the_preferences_page(
    pending, approver, outsider, fakes, channel
):
    post_slack(*click_slack(pending, "U0NEW", fakes, channel))

    assert status_of(pending) == Status.PENDING
    assert denials() == ["Refused from Slack (dba-slack): the chat user is not linked"]
    [answer] = fakes.posts("slack_response")
    assert answer.body["response_type"] == "ephemeral"
    code = re.search(r"Chat accounts: (\S+)$", answer.body["text"]).group(1)

    page = Client()
    page.force_login(approver)
    response = page.post(reverse("chat_link"), {"code": code}, follow=True)
    assert "Your chat account is linked." in response.content.decode()
    assert ChatIdentity.objects.get(platform="slack", external_id="U0NEW").user == approver
    assert "U0NEW" in page.get(reverse("preferences")).content.decode()
    # The code works once, and for nobody else.
    other = Client()
    other.force_login(outsider)
    response = other.post(reverse("chat_link"), {"code": code}, follow=True)
    assert "linked to another user" in response.content.decode()

    post_slack(*click_slack(pending, "U0NEW", fakes, channel))
    assert status_of(pending) == Status.APPROVED


def test_a_forged_or_expired_link_code_links_nothing(approver, settings, db):
    page = Client()
    page.force_login(approver)
    response = page.post(reverse("chat_link"), {"code": "slack:U0BOB"}, follow=True)
    assert "not valid or has expired" in response.content.decode()
    assert ChatIdentity.objects.count() == 0


def test_the_requester_cannot_approve_their_own_request_from_chat(
    pending, requester, fakes, channel
):
    link(requester, "slack", "U0ALICE")
    post_slack(*click_slack(pending, "U0ALICE", fakes, channel))

    assert status_of(pending) == Status.PENDING
    assert denials() == ["Refused from Slack (dba-slack): their own request"]
    assert "their own request" in fakes.posts("slack_response")[0].body["text"]


def test_a_privilege_protected_by_policy_answers_with_the_page(requester, approver, fakes, channel):
    instance = instance_row("r-chat0003")
    writer = request_row(requester, instance, "app_writer", privilege="RoleReadWrite")
    link(approver, "slack", "U0BOB")
    post_slack(*click_slack(writer, "U0BOB", fakes, channel))

    assert status_of(writer) == Status.PENDING
    assert denials() == [
        "Refused from Slack (dba-slack): this privilege is decided on the dashboard's page"
    ]
    assert f"/requests/{writer.pk}/" in fakes.posts("slack_response")[0].body["text"]


def test_a_click_on_the_link_button_decides_nothing(pending, approver, fakes, channel):
    link(approver, "slack", "U0BOB")
    payload = slack_block_action("U0BOB", "open", "", slack_response_url(fakes))
    assert post_slack(*slack_interaction(SLACK_SECRET, payload)).status_code == 200
    assert status_of(pending) == Status.PENDING and denials() == []


# --- Feishu/Lark --------------------------------------------------------------------------


def post_feishu(body: bytes, headers: dict):
    return platform_client().post(
        reverse("chat_feishu"), body, content_type=headers.pop("Content-Type"), headers=headers
    )


def feishu_click(account_request, open_id: str, channel_id=None, token=FEISHU_TOKEN) -> dict:
    value = {"action": "approve", "request_id": account_request.pk, "channel": channel_id}
    return feishu_card_action(token, open_id, value)


@pytest.fixture
def feishu_channel(fakes, db):
    return chat_channel_add(
        name="dba-feishu",
        kind="feishu",
        url=fakes.add("feishu", "hook"),
        language="zh-hans",
    )


def test_a_linked_approver_approves_from_feishu_and_the_answer_is_the_updated_card(
    pending, approver, feishu_channel
):
    link(approver, "feishu", "ou_bob")
    response = post_feishu(
        *feishu_callback(FEISHU_KEY, feishu_click(pending, "ou_bob", feishu_channel.pk))
    )

    assert response.status_code == 200
    assert status_of(pending) == Status.APPROVED
    answer = response.json()
    assert answer["toast"]["type"] == "success"
    card = json.dumps(answer["card"], ensure_ascii=False)
    assert answer["card"]["type"] == "raw" and "已批准" in card and "bob" in card
    event = AuditEvent.objects.get(action=Action.REQUEST_APPROVED)
    assert event.actor == approver and "Feishu/Lark (dba-feishu)" in event.user_agent


@pytest.mark.parametrize(
    "break_it, reason",
    [
        (lambda body, headers: (body[:-3] + b'x"}', headers), "signature does not match"),
        (
            lambda body, headers: (
                body,
                {**headers, "X-Lark-Request-Timestamp": str(int(time.time()) + 1)},
            ),
            "signature does not match",
        ),
        (
            lambda body, headers: {k: v for k, v in headers.items() if not k.startswith("X-")},
            "signature missing",
        ),
    ],
    ids=["tampered body", "changed timestamp", "unsigned"],
)
def test_a_feishu_callback_that_is_not_feishus_is_refused_and_audited(
    pending, approver, break_it, reason
):
    link(approver, "feishu", "ou_bob")
    body, headers = feishu_callback(FEISHU_KEY, feishu_click(pending, "ou_bob"))
    broken = break_it(body, headers)
    body, headers = broken if isinstance(broken, tuple) else (body, broken)

    assert post_feishu(body, headers).status_code == 403
    assert status_of(pending) == Status.PENDING
    assert denials() == [f"Refused from Feishu/Lark: {reason}"]


def test_a_feishu_callback_signed_long_ago_or_replayed_or_with_another_token_is_refused(
    pending, approver
):
    link(approver, "feishu", "ou_bob")
    old = feishu_callback(
        FEISHU_KEY, feishu_click(pending, "ou_bob"), timestamp=int(time.time()) - 600
    )
    assert post_feishu(*old).status_code == 403
    other_app = feishu_callback(FEISHU_KEY, feishu_click(pending, "ou_bob", token="another"))
    assert post_feishu(*other_app).status_code == 403
    AccountRequest.objects.filter(pk=pending.pk).update(approvals_required=2)
    click = feishu_click(pending, "ou_bob")
    assert post_feishu(*feishu_callback(FEISHU_KEY, click)).status_code == 200
    assert post_feishu(*feishu_callback(FEISHU_KEY, click)).status_code == 403  # same event_id
    assert denials() == [
        "Refused from Feishu/Lark: timestamp missing or older than five minutes",
        "Refused from Feishu/Lark: verification token does not match",
        "Refused from Feishu/Lark: replayed",
    ]
    assert Decision.objects.count() == 1


def test_feishu_saving_the_callback_url_gets_its_challenge_back(db):
    data = {"challenge": "c-123", "type": "url_verification", "token": FEISHU_TOKEN}
    body = json.dumps({"encrypt": feishu_encrypt(FEISHU_KEY, data)}).encode()
    response = post_feishu(body, {"Content-Type": "application/json"})
    assert response.json() == {"challenge": "c-123"}


def test_the_callbacks_answer_only_posts(db):
    assert platform_client().get(reverse("chat_slack")).status_code == 405
    assert platform_client().get(reverse("chat_feishu")).status_code == 405


def test_pending_cards_carry_the_buttons_and_their_channel(pending, fakes, channel):
    message = messages.compose("submitted", pending, "en", channel_id=channel.pk)
    slack = json.dumps(messages.payload("slack", message))
    feishu = messages.payload("feishu", message)
    assert f'"value": "{pending.pk}:{channel.pk}"' in slack and '"action_id": "reject"' in slack
    buttons = feishu["card"]["elements"][1]["actions"]
    assert {"action": "approve", "request_id": pending.pk, "channel": channel.pk} in [
        button.get("value") for button in buttons
    ]
    assert ChatChannel.objects.count() == 1


def test_without_the_apps_secrets_cards_carry_only_the_link(pending, channel, settings):
    settings.SLACK_SIGNING_SECRET = settings.FEISHU_ENCRYPT_KEY = ""
    message = messages.compose("submitted", pending, "en", channel_id=channel.pk)
    for kind in ("slack", "feishu"):
        text = json.dumps(messages.payload(kind, message))
        assert "approve" not in text and "Open the request" in text
