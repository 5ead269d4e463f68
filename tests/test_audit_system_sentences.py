"""What the system writes into the audit log is a catalogue identifier with parameters,
said in each reader's language (issue 21, bug 6): the sweep's drift, fleet requests and
their runs, reconciliation, and chat refusals' reasons, which used to be English text."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.utils import translation

from accounts_app.audit import Origin
from accounts_app.audit.messages import MESSAGES, event_text
from accounts_app.chat.verify import CallbackRefused
from accounts_app.models import AuditEvent
from accounts_app.services import chat_approvals, drift
from tests.test_drift import made_outside

pytestmark = pytest.mark.django_db

SERVICES = Path(__file__).resolve().parent.parent / "accounts_app" / "services"


def test_no_service_writes_a_literal_sentence_as_an_events_comment():
    """A comment is what a user typed; a literal (or an f-string) is the system's own."""
    found = []
    for path in sorted(SERVICES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "comment":
                if isinstance(node.value, ast.JoinedStr) or (
                    isinstance(node.value, ast.Constant) and node.value.value
                ):
                    found.append(f"{path.name}:{node.value.lineno}")
    assert not found


def test_a_drift_is_said_in_the_readers_language(estate):
    made_outside(estate, "console_made")
    drift.sweep_accounts(origin=Origin.system("test"), pause=0)

    event = AuditEvent.objects.get(
        action=AuditEvent.Action.DRIFT_FOUND, account_name="console_made"
    )
    assert (event.message_id, event.comment) == ("drift.unmanaged", "")
    with translation.override("zh-hans"):
        assert event_text(event) == "非经本平台创建：由账号扫描发现。"
    assert event_text(event) == "Not made through the dashboard: found by the account sweep."


@pytest.mark.parametrize(
    ("refusal", "chinese"),
    [
        (CallbackRefused("replayed"), "重放的请求"),
        (CallbackRefused("signature does not match"), "签名不匹配"),
        (CallbackRefused("SLACK_SIGNING_SECRET is not set"), "未设置该平台的签名密钥"),
        (ValueError("bad JSON"), "回调格式错误"),
    ],
)
def test_a_chat_refusals_reason_is_said_in_the_readers_language(refusal, chinese):
    chat_approvals._audit_refusal("slack", chat_approvals._reason(refusal), "203.0.113.9")

    event = AuditEvent.objects.get(action=AuditEvent.Action.PERMISSION_DENIED)
    assert event.message_id == "chat.refused"
    with translation.override("zh-hans"):
        said = event_text(event)
    assert chinese in said
    assert not any(c.isascii() and c.isalpha() for c in said.replace("Slack", ""))


def test_every_chat_refusal_reason_is_in_the_catalogue():
    assert set(chat_approvals.REFUSAL_REASONS.values()) <= set(MESSAGES)
