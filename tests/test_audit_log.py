"""record_event(): one chained event per call, fail closed, and no way to change one."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib import admin
from django.db import DatabaseError, transaction
from django.test import RequestFactory

from accounts_app.audit import Origin, record_event
from accounts_app.audit.chain import GENESIS_HASH, event_digest, event_values
from accounts_app.models import (
    AppendOnlyError,
    AuditChainHead,
    AuditEvent,
    Instance,
)
from tests.builders import instance_row
from tests.conftest import cast_member

pytestmark = pytest.mark.django_db

Action = AuditEvent.Action
Outcome = AuditEvent.Outcome


def record(comment: str = "", **kwargs) -> AuditEvent:
    return record_event(
        action=kwargs.pop("action", Action.INSTANCES_SYNCED),
        outcome=kwargs.pop("outcome", Outcome.SUCCESS),
        origin=kwargs.pop("origin", Origin.system("test")),
        comment=comment,
        **kwargs,
    )


def make_instance(instance_id: str = "r-bp1audit000000001") -> Instance:
    return instance_row(instance_id)


def test_events_form_one_chain_from_the_genesis_hash():
    first, second, third = record("one"), record("two"), record("three")

    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    head = AuditChainHead.objects.get()
    assert (head.seq, head.hash) == (3, third.hash)


def test_time_never_goes_backwards_along_the_chain():
    first = record("clock is right")
    with mock.patch(
        "django.utils.timezone.now", return_value=first.created_at - timedelta(hours=1)
    ):
        second = record("clock stepped back an hour")

    assert second.created_at == first.created_at


def test_the_hash_is_an_hmac_of_what_the_database_gives_back():
    event = record(
        "routine",
        instance_id="r-bp1xyz",
        region_id="cn-hangzhou",
        account_name="app_reader",
        account_privilege="RoleReadOnly",
        alibaba_request_id="5E5C7B2A-0000-4C4B-9C1E-AAAA",
        error_code="Throttling.User",
    )
    stored = AuditEvent.objects.get(pk=event.pk)

    assert stored.hash == event_digest(event_values(stored), stored.prev_hash)
    assert len(stored.hash) == 64


def test_the_hash_depends_on_the_key(settings):
    event = record("keyed")
    stored = AuditEvent.objects.get(pk=event.pk)
    settings.AUDIT_HMAC_KEY = "another-key"

    assert event_digest(event_values(stored), stored.prev_hash) != stored.hash


def test_origin_comes_from_the_request_and_ignores_forwarded_for(approver):
    request = RequestFactory().get(
        "/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.0.0.1", HTTP_USER_AGENT="curl/8"
    )
    request.user = approver

    event = record(origin=Origin.from_request(request))

    assert (event.actor, event.actor_name) == (approver, "bob")
    assert (event.source_ip, event.user_agent) == ("203.0.113.9", "curl/8")


def test_an_ipv6_source_is_hashed_in_the_form_the_database_keeps():
    event = record(
        origin=Origin(actor_name="x", source_ip="2001:0db8:0000:0000:0000:0000:0000:0001")
    )
    stored = AuditEvent.objects.get(pk=event.pk)

    assert stored.source_ip == "2001:db8::1"
    assert stored.hash == event_digest(event_values(stored), stored.prev_hash)


def test_what_an_event_is_not_given_is_left_empty():
    event = record_event(action=Action.LOGIN, outcome=Outcome.SUCCESS, origin=Origin.system("t"))

    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.alibaba_request_id, stored.error_code, stored.comment) == ("", "", "")
    assert (stored.instance_id, stored.account_name, stored.request_id) == ("", "", None)


def test_an_event_costs_two_statements_inside_the_change_it_records(
    django_assert_num_queries,
):
    """The head moved on from the one this process wrote last (compare-and-set), the event
    inserted: no savepoint of its own (a failure rolls the whole change back anyway)."""
    record("first")
    with transaction.atomic(), django_assert_num_queries(2):
        record("second")


def test_a_head_another_process_moved_is_read_under_its_lock_and_the_chain_holds(
    django_assert_num_queries,
):
    first = record("first")
    # Another process's event, written after ours: this process's idea of the head is old.
    head = AuditChainHead.objects.get()
    AuditChainHead.objects.update(seq=head.seq + 1, hash="f" * 64)
    with transaction.atomic(), django_assert_num_queries(4):  # missed, locked, moved, event
        second = record("second")
    assert (second.seq, second.prev_hash) == (first.seq + 2, "f" * 64)
    assert AuditChainHead.objects.get().hash == second.hash


def test_a_nul_character_does_not_make_the_event_impossible():
    event = record("user typed \x00 this")

    assert AuditEvent.objects.get(pk=event.pk).comment == "user typed  this"


def test_the_request_fills_instance_and_account(requester):
    from accounts_app.models import AccountRequest

    instance = make_instance()
    account_request = AccountRequest.objects.create(
        requester=requester,
        instance=instance,
        account_name="app_reader",
        account_privilege="RoleReadOnly",
        justification="reports",
        approvals_required=1,
    )

    event = record(action=Action.REQUEST_SUBMITTED, request=account_request)

    assert (event.instance_id, event.region_id) == ("r-bp1audit000000001", "cn-hangzhou")
    assert (event.account_name, event.account_privilege) == ("app_reader", "RoleReadOnly")


def test_a_change_whose_event_cannot_be_written_does_not_happen(monkeypatch):
    record("before")

    def refuse(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(AuditEvent, "save", refuse)
    with pytest.raises(DatabaseError), transaction.atomic():
        make_instance()
        record("the change")

    assert not Instance.objects.exists()
    assert AuditChainHead.objects.get().seq == 1


def test_an_event_that_fails_after_insert_leaves_no_trace(monkeypatch):
    """The chain head update fails: the inserted event goes with it."""
    record("before")
    original_filter = AuditChainHead.objects.filter

    class BrokenHead:
        def filter(self, **kwargs):
            return self

        def update(self, **kwargs):
            raise DatabaseError("connection lost")

    monkeypatch.setattr(AuditChainHead.objects, "filter", lambda **kwargs: BrokenHead())
    with pytest.raises(DatabaseError), transaction.atomic():
        make_instance()
        record("the change")
    monkeypatch.setattr(AuditChainHead.objects, "filter", original_filter)

    assert not Instance.objects.exists()
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == [1]
    assert record("after").seq == 2


def test_a_saved_event_cannot_be_saved_again():
    event = record("original")
    event.comment = "rewritten"

    with pytest.raises(AppendOnlyError):
        event.save()
    assert AuditEvent.objects.get(pk=event.pk).comment == "original"


def test_an_event_cannot_be_deleted():
    event = record("keep me")

    with pytest.raises(AppendOnlyError):
        event.delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.parametrize(
    "change",
    [
        lambda events: events.update(comment="rewritten"),
        lambda events: events.filter(seq=1).update(comment="rewritten"),
        lambda events: events.delete(),
        lambda events: events.filter(seq=1).delete(),
        lambda events: events.bulk_update(list(events), ["comment"]),
    ],
    ids=["update", "filtered update", "delete", "filtered delete", "bulk_update"],
)
def test_the_queryset_refuses_bulk_changes(change):
    record("original")

    with pytest.raises(AppendOnlyError):
        change(AuditEvent.objects.all())
    assert AuditEvent.objects.get().comment == "original"


def test_the_admin_offers_no_add_change_or_delete(make_user):
    superuser = cast_member(make_user, "superuser_requester")
    request = RequestFactory().get("/admin/")
    request.user = superuser
    model_admin = admin.site._registry[AuditEvent]

    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert "delete_selected" not in model_admin.get_actions(request)


def test_the_admin_refuses_to_change_an_event_through_http(client, make_user):
    event = record("original")
    client.force_login(cast_member(make_user, "superuser_requester"))
    change_url = f"/admin/accounts_app/auditevent/{event.pk}/change/"

    assert client.get(change_url).status_code == 200  # read-only view
    assert client.post(change_url, {"comment": "rewritten"}).status_code == 403
    delete_url = f"/admin/accounts_app/auditevent/{event.pk}/delete/"
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert client.get("/admin/accounts_app/auditevent/add/").status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).comment == "original"
