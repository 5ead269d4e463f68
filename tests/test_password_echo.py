"""The password echoed back (issue 23, finding 4): an upstream error that repeats the
password in another encoding must not carry it into the request, the audit log, the
failure mail or the log. A failed CreateAccount keeps only the code and our own
sentence for it."""

from __future__ import annotations

import base64
import html
import logging
from urllib.parse import quote

import pytest
from django.core import mail

from accounts_app.audit import Origin
from accounts_app.models import AccountRequest, AuditEvent
from accounts_app.services import workflow
from tests.builders import approved_request
from tests.hostile_upstream import hostile_endpoint

pytestmark = pytest.mark.django_db

PASSWORD = "Ech0-Canary&Pw+9"


def encodings(password: str) -> dict[str, str]:
    return {
        "raw": password,
        "percent-lower": "".join(f"%{ord(c):02x}" for c in password),
        "html": html.escape(password) + " / " + "".join(f"&#{ord(c)};" for c in password),
        "base64": base64.b64encode(password.encode()).decode(),
        "hex": password.encode().hex(),
        "partial": password[2:10],
        "u-escaped": "".join(f"\\u{ord(c):04x}" for c in password),
        "spaced": " ".join(password),
        "quoted": quote(password, safe=""),
    }


# Where the echo comes back: the Message, the Code or the RequestId.
CASES = [("Message", name) for name in encodings(PASSWORD)] + [
    ("Code", "raw"),
    ("Code", "partial"),
    ("RequestId", "raw"),
    ("RequestId", "hex"),
]


def forms_of(password: str) -> set[str]:
    return set(encodings(password).values()) | {password[2:10], password.encode().hex()}


@pytest.mark.parametrize("field,encoding", CASES, ids=[f"{f}-{e}" for f, e in CASES])
def test_an_echoed_password_reaches_no_sink(
    settings,
    estate,
    requester,
    approver,
    caplog,
    django_capture_on_commit_callbacks,
    field,
    encoding,
):
    requester.email = "alice@example.com"
    requester.save()
    account_request = approved_request(requester, approver)
    echo = encodings(PASSWORD)[encoding]

    def refuse(action: str, data: dict) -> dict:
        if action != "CreateAccount":
            return data
        answer = {
            "RequestId": "5E2A1C3B-0000-4000-8000-00000000000A",
            "Code": "InvalidParameter.Weird",
            "Message": "Rejected.",
        }
        answer[field] = f"Rejected value {echo}." if field == "Message" else echo
        return answer

    caplog.set_level(logging.DEBUG)
    with hostile_endpoint(estate.endpoint, refuse) as endpoint:
        settings.KVSTORE_ENDPOINT = endpoint
        with django_capture_on_commit_callbacks(execute=True):
            result = workflow.request_execute(
                request_id=account_request.pk,
                user=requester,
                account_password=PASSWORD,
                origin=Origin.system("test"),
            )
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.FAILED, account_request.status
    assert not result.created
    sinks = {
        "request": " ".join(
            [
                account_request.error_code,
                account_request.error_message,
                account_request.alibaba_request_id,
            ]
        ),
        "audit": " ".join(
            f"{e.comment} {e.error_code} {e.alibaba_request_id}"
            for e in AuditEvent.objects.filter(request=account_request)
        ),
        "mail": " ".join(f"{m.subject} {m.body}" for m in mail.outbox),
        "log": caplog.text,
        "page": f"{result.error.human_message} {result.error.code} {result.error.request_id}",
    }
    assert mail.outbox, "the failure mail was sent"
    for sink, text in sinks.items():
        for form in forms_of(PASSWORD):
            assert form not in text, (sink, form)
    # Our own sentence, never the API's text.
    assert "Rejected" not in sinks["request"] and "Rejected" not in sinks["audit"]
