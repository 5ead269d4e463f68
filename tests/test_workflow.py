"""The approval workflow against the real simulator over a socket."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts_app.models import AccountRequest, AuditEvent, Decision
from accounts_app.services import workflow
from tests.builders import approve, approved_request, origin_of, submitted_request
from tests.demo_instances import HEALTHY, REPL_OK

pytestmark = pytest.mark.django_db

VALID_PASSWORD = "Str0ng-Passw0rd"
Status = AccountRequest.Status


def execute(account_request, user, client, password=VALID_PASSWORD):
    return workflow.request_execute(
        request_id=account_request.pk,
        user=user,
        account_password=password,
        origin=origin_of(user),
        client=client,
    )


def actions(account_request) -> list[str]:
    return list(account_request.events.order_by("seq").values_list("action", flat=True))


@pytest.fixture
def client_(estate):
    return estate.client()


def test_a_request_goes_from_submission_to_a_created_account(estate, client_, requester, approver):
    account_request = submitted_request(requester)
    assert account_request.status == Status.PENDING
    approve(account_request, approver)
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED

    result = execute(account_request, requester, client_)

    assert result.created
    account_request.refresh_from_db()
    assert account_request.status == Status.CREATED
    assert account_request.alibaba_request_id
    assert "app_reader" in estate.account_names(HEALTHY)
    assert len(estate.calls("CreateAccount")) == 1
    assert actions(account_request) == [
        "request_submitted",
        "request_approved",
        "execution_started",
        "account_created",
    ]


def test_nobody_approves_their_own_request_not_even_a_superuser(estate, make_user):
    boss = make_user("boss", "Requesters", "Approvers", superuser=True)
    account_request = submitted_request(boss)
    with pytest.raises(workflow.TransitionError):
        approve(account_request, boss)
    account_request.refresh_from_db()
    assert account_request.status == Status.PENDING
    assert not Decision.objects.exists()


def test_the_database_refuses_a_decision_by_the_requester(estate, requester):
    account_request = submitted_request(requester)
    with pytest.raises(IntegrityError), transaction.atomic():
        Decision.objects.create(
            request=account_request, approver=requester, requester=requester, verdict="approve"
        )


def test_replication_needs_two_distinct_approvers(estate, requester, approver, second_approver):
    account_request = submitted_request(
        requester, instance_id=REPL_OK, name="replicator1", privilege="RoleRepl"
    )
    assert account_request.approvals_required == 2
    approve(account_request, approver)
    account_request.refresh_from_db()
    assert account_request.status == Status.PENDING
    with pytest.raises(workflow.TransitionError):
        approve(account_request, approver)
    approve(account_request, second_approver)
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED


def test_a_rejection_needs_a_comment_and_ends_the_request(estate, requester, approver):
    account_request = submitted_request(requester)
    with pytest.raises(workflow.TransitionError):
        workflow.request_reject(
            request_id=account_request.pk,
            approver=approver,
            comment=" ",
            origin=origin_of(approver),
        )
    workflow.request_reject(
        request_id=account_request.pk,
        approver=approver,
        comment="Use the shared reader.",
        origin=origin_of(approver),
    )
    account_request.refresh_from_db()
    assert account_request.status == Status.REJECTED
    with pytest.raises(workflow.TransitionError):
        approve(account_request, approver)


def test_only_the_requester_cancels(estate, requester, other_requester):
    account_request = submitted_request(requester)
    with pytest.raises(workflow.TransitionError):
        workflow.request_cancel(
            request_id=account_request.pk, user=other_requester, origin=origin_of(other_requester)
        )
    workflow.request_cancel(
        request_id=account_request.pk, user=requester, origin=origin_of(requester)
    )
    account_request.refresh_from_db()
    assert account_request.status == Status.CANCELLED


def test_only_the_requester_executes_and_only_once(estate, client_, requester, approver):
    account_request = submitted_request(requester)
    approve(account_request, approver)
    with pytest.raises(workflow.TransitionError):
        execute(account_request, approver, client_)
    execute(account_request, requester, client_)
    with pytest.raises(workflow.TransitionError):
        execute(account_request, requester, client_)
    assert len(estate.calls("CreateAccount")) == 1


def test_a_second_open_request_for_the_same_name_is_refused(estate, requester):
    submitted_request(requester)
    with pytest.raises(workflow.TransitionError):
        submitted_request(requester)


def test_preflight_blocks_a_name_that_already_exists_on_the_instance(estate, requester):
    estate.add_account(HEALTHY, "taken_name")
    with pytest.raises(workflow.TransitionError) as raised:
        submitted_request(requester, name="taken_name")
    assert raised.value.preflight is not None
    assert not AccountRequest.objects.exists()


def test_throttling_that_never_ends_keeps_the_approval_and_creates_nothing(
    estate, client_, requester, approver
):
    account_request = approved_request(requester, approver)
    estate.add_fault("throttle", action="CreateAccount", count=10)
    result = execute(account_request, requester, client_)
    assert not result.created
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED
    assert account_request.error_code.startswith("Throttling")
    assert "app_reader" not in estate.account_names(HEALTHY)
    assert actions(account_request)[-1] == "execution_failed"


@pytest.mark.parametrize("mode", ["http500", "http503"])
def test_server_errors_keep_the_approval(estate, client_, requester, approver, mode):
    account_request = approved_request(requester, approver)
    estate.add_fault(mode, action="CreateAccount", count=10)
    execute(account_request, requester, client_)
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED
    estate.clear_faults()
    assert execute(account_request, requester, client_).created


def test_a_commit_then_timeout_is_reconciled_as_created_without_a_second_call(
    estate, client_, requester, approver
):
    account_request = approved_request(requester, approver)
    estate.add_fault("commit_then_timeout", action="CreateAccount", delay=3)
    result = execute(account_request, requester, client_)
    account_request.refresh_from_db()
    assert result.created
    assert account_request.status == Status.CREATED
    assert len(estate.calls("CreateAccount")) == 1
    assert actions(account_request)[-2:] == ["outcome_unknown", "reconciled"]


@pytest.mark.parametrize("mode", ["reset", "malformed"])
def test_an_ambiguous_failure_is_settled_by_describe_accounts(
    estate, client_, requester, approver, mode
):
    account_request = approved_request(requester, approver)
    estate.add_fault(mode, action="CreateAccount")
    execute(account_request, requester, client_)
    account_request.refresh_from_db()
    exists = "app_reader" in estate.account_names(HEALTHY)
    assert account_request.status == (Status.CREATED if exists else Status.APPROVED)
    assert len(estate.calls("CreateAccount")) == 1
    assert "outcome_unknown" in actions(account_request)


def test_when_describe_accounts_fails_too_the_request_waits_for_reconciliation(
    estate, client_, requester, approver, django_capture_on_commit_callbacks
):
    approver.email = "bob@example.com"
    approver.save()
    account_request = approved_request(requester, approver)
    estate.add_fault("commit_then_timeout", action="CreateAccount", delay=3)
    estate.add_fault("http503", action="DescribeAccounts", count=100)
    with django_capture_on_commit_callbacks(execute=True):
        execute(account_request, requester, client_)
    account_request.refresh_from_db()
    assert account_request.status == Status.NEEDS_RECONCILIATION
    assert any("reconciliation" in m.subject for m in mail.outbox)

    estate.clear_faults()
    call_command("reconcile_requests")
    account_request.refresh_from_db()
    assert account_request.status == Status.CREATED
    assert len(estate.calls("CreateAccount")) == 1


def test_an_expired_approval_cannot_be_used(estate, client_, requester, approver, settings):
    account_request = approved_request(requester, approver)
    AccountRequest.objects.filter(pk=account_request.pk).update(
        approved_at=timezone.now() - timedelta(hours=settings.APPROVAL_TTL_HOURS + 1)
    )
    with pytest.raises(workflow.TransitionError):
        execute(account_request, requester, client_)
    account_request.refresh_from_db()
    assert account_request.status == Status.EXPIRED
    assert actions(account_request)[-1] == "request_expired"
    assert not estate.calls("CreateAccount")


def test_expire_requests_marks_stale_requests_and_tells_the_requester(
    estate, requester, settings, django_capture_on_commit_callbacks
):
    requester.email = "alice@example.com"
    requester.save()
    account_request = submitted_request(requester)
    AccountRequest.objects.filter(pk=account_request.pk).update(
        created_at=timezone.now() - timedelta(days=settings.REQUEST_TTL_DAYS + 1)
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("expire_requests")
    account_request.refresh_from_db()
    assert account_request.status == Status.EXPIRED
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]


def test_a_stuck_execution_is_picked_up_by_reconcile_requests(estate, requester, approver):
    account_request = approved_request(requester, approver)
    AccountRequest.objects.filter(pk=account_request.pk).update(
        status=Status.EXECUTING, executing_since=timezone.now() - timedelta(minutes=10)
    )
    call_command("reconcile_requests")
    account_request.refresh_from_db()
    # Nothing was created on the simulator: the approval stands again.
    assert account_request.status == Status.APPROVED


def test_approvers_are_mailed_on_a_new_request_and_the_requester_on_decisions(
    estate, requester, approver, django_capture_on_commit_callbacks
):
    requester.email = "alice@example.com"
    requester.save()
    approver.email = "bob@example.com"
    approver.save()
    with django_capture_on_commit_callbacks(execute=True):
        account_request = submitted_request(requester)
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    with django_capture_on_commit_callbacks(execute=True):
        approve(account_request, approver)
    assert mail.outbox[-1].to == ["alice@example.com"]
    assert all(VALID_PASSWORD not in m.body for m in mail.outbox)


def test_a_failing_mail_server_never_breaks_a_transition(
    estate, requester, approver, settings, django_capture_on_commit_callbacks
):
    settings.MAILERS = {"default": {"BACKEND": "tests.test_workflow.BrokenEmailBackend"}}
    approver.email = "bob@example.com"
    approver.save()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        account_request = submitted_request(requester)
    assert len(callbacks) == 1
    account_request.refresh_from_db()
    assert account_request.status == Status.PENDING


class BrokenEmailBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp down")


def test_a_failed_audit_write_means_no_claim_and_no_call(
    estate, client_, requester, approver, monkeypatch
):
    account_request = approved_request(requester, approver)

    def broken_record_event(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(workflow, "record_event", broken_record_event)
    with pytest.raises(RuntimeError):
        execute(account_request, requester, client_)
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED
    assert not estate.calls("CreateAccount")
    assert AuditEvent.objects.filter(action="execution_started").count() == 0
