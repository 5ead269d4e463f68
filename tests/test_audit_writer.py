"""record_event(): what one audit event keeps of what it was given, and where it goes.

The chain's own guarantees (links, HMAC, verification) are in test_audit_chain.py and
test_audit_golden.py; these pin the writer's part: each field as given, the columns'
lengths, the chain head found or made again, and time that never runs backwards.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts_app.audit import Origin, record_event, verify_chain
from accounts_app.audit import writer as audit_writer
from accounts_app.audit.messages import message
from accounts_app.models import AuditChainHead, AuditEvent

pytestmark = pytest.mark.django_db

Action, Outcome = AuditEvent.Action, AuditEvent.Outcome


def login(**fields) -> AuditEvent:
    fields.setdefault("origin", Origin.system("writer-test"))
    event = record_event(action=Action.LOGIN, outcome=Outcome.SUCCESS, **fields)
    return AuditEvent.objects.get(pk=event.pk)


def test_an_event_keeps_the_action_outcome_and_alibaba_fields_it_was_given():
    event = AuditEvent.objects.get(
        pk=record_event(
            action=Action.LOGOUT,
            outcome=Outcome.FAILURE,
            origin=Origin.system("writer-test"),
            alibaba_request_id="5A6B-REQUEST",
            error_code="Throttling.User",
        ).pk
    )

    assert (event.action, event.outcome) == (Action.LOGOUT, Outcome.FAILURE)
    assert (event.alibaba_request_id, event.error_code) == ("5A6B-REQUEST", "Throttling.User")


def test_long_values_are_cut_to_their_columns_before_they_are_hashed():
    # PostgreSQL refuses a value longer than its column; SQLite would keep it, and the
    # HMAC must be of what the database keeps.
    event = login(origin=Origin(actor_name="n" * 200, user_agent="u" * 600), error_code="E" * 200)

    assert (len(event.actor_name), len(event.user_agent), len(event.error_code)) == (
        150,
        512,
        128,
    )
    assert verify_chain().ok


def test_an_event_without_a_message_has_neither_identifier_nor_parameters():
    event = login()

    assert (event.message_id, event.message_params) == ("", "")


def test_an_event_keeps_its_messages_parameters():
    said = message("sync.summary_failed", seen=4)

    event = login(message=said)

    assert (event.message_id, event.message_params) == (said.id, said.params_text())
    assert event.message_params != ""


def test_an_emptied_chain_head_table_is_made_again_as_row_one():
    # Migration 0002 creates the row; a flush after a transactional test removes it.
    AuditChainHead.objects.all().delete()
    before = AuditEvent.objects.count()

    event = login()

    head = AuditChainHead.objects.get()
    assert (head.pk, head.seq, head.hash) == (1, event.seq, event.hash)
    assert event.seq == 1 and before == 0


def test_time_never_runs_backwards_even_when_the_head_has_no_time_of_its_own(monkeypatch):
    first = login()
    # A head written before last_event_at existed: the writer reads the event's time.
    AuditChainHead.objects.update(last_event_at=None)
    stepped_back = first.created_at - timedelta(hours=1)
    monkeypatch.setattr(audit_writer.timezone, "now", lambda: stepped_back)

    second = login()

    assert second.created_at == first.created_at
    monkeypatch.undo()
    assert second.created_at <= timezone.now()
