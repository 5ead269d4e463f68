"""What the workflow promises, seen where it matters: the account at the simulator, the
approval policy in the database, the request's row and its audit events and mails.

Each test here was first run against a deliberately broken workflow (a dropped argument,
a deleted check, a missing field) and failed there.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts_app.alibaba.errors import ApiUnreachable
from accounts_app.audit.messages import event_text
from accounts_app.models import (
    AccountRequest,
    ApprovalPolicy,
    AuditEvent,
    Decision,
    Instance,
    RoleGrant,
)
from accounts_app.rules import MAX_ACCOUNTS_PER_INSTANCE
from accounts_app.services import lifecycle, workflow
from tests.api_support import ApiClient, token_for
from tests.builders import (
    approve,
    approved_request,
    origin_of,
    request_form_data,
    request_row,
    submitted_request,
)
from tests.conftest import empty_instance

pytestmark = pytest.mark.django_db

HEALTHY = "r-bp1ord5x0c9kq2m7wa"  # 5.0 standard
REPL_OK = "r-bp1leg4s3f5kx7b1qa"  # 4.0 standard: the one that allows RoleRepl
PASSWORD = "Str0ng-Passw0rd"
Status = AccountRequest.Status


def execute(account_request, user, client):
    return workflow.request_execute(
        request_id=account_request.pk,
        user=user,
        account_password=PASSWORD,
        origin=origin_of(user),
        client=client,
    )


def approved(requester, *approvers, **submitted):
    account_request = submitted_request(requester, **submitted)
    for approver in approvers:
        approve(account_request, approver)
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED
    return account_request


def account_read_back(client, instance_id, name):
    """DescribeAccounts over the socket, as an operator would check it."""
    [account] = client.describe_accounts(
        region_id="cn-hangzhou", instance_id=instance_id, account_name=name
    )
    return account


def events(account_request, action):
    return list(AuditEvent.objects.filter(request=account_request, action=action))


@pytest.fixture
def client_(estate):
    return estate.client()


# --- 1. What was requested is what gets created -------------------------------------


def test_the_account_is_created_with_the_requested_privilege_and_description(
    estate, client_, requester, approver
):
    account_request = approved(requester, approver)

    execute(account_request, requester, client_)

    account = account_read_back(client_, HEALTHY, "app_reader")
    # The API defaults a missing privilege to RoleReadWrite: read-only must arrive.
    assert account.privilege == "RoleReadOnly"
    assert account.account_description == "reporting"
    assert estate.calls("CreateAccount")[0]["params"]["AccountType"] == "Normal"


def test_a_replication_request_creates_a_replication_account(
    estate, client_, requester, approver, second_approver
):
    account_request = approved(
        requester,
        approver,
        second_approver,
        instance_id=REPL_OK,
        name="replicator1",
        privilege="RoleRepl",
    )

    execute(account_request, requester, client_)

    assert account_read_back(client_, REPL_OK, "replicator1").privilege == "RoleRepl"


def test_the_stored_request_keeps_everything_that_was_submitted(estate, requester):
    original = submitted_request(requester, name="first_reader")

    copy = submitted_request(
        requester,
        name="second_reader",
        privilege="RoleReadWrite",
        account_description="copy-of-first",
        justification="Same as the first, for the batch jobs.",
        copied_from=original,
    )

    copy.refresh_from_db()
    assert (copy.account_name, copy.account_privilege) == ("second_reader", "RoleReadWrite")
    assert copy.account_description == "copy-of-first"
    assert copy.account_type == "Normal"
    assert copy.justification == "Same as the first, for the batch jobs."
    assert copy.copied_from == original
    assert events(copy, "request_submitted")[0].comment == copy.justification


# --- 2. The instance is checked again at execution ------------------------------------


def test_a_name_taken_on_the_instance_after_approval_stops_the_execution(
    estate, client_, requester, approver
):
    account_request = approved(requester, approver)
    estate.add_account(HEALTHY, "app_reader", privilege="RoleReadWrite")

    with pytest.raises(workflow.TransitionError) as refused:
        execute(account_request, requester, client_)

    assert refused.value.preflight.check("account_name").status == "blocked"
    assert not estate.calls("CreateAccount")
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED


def test_a_privilege_the_instance_no_longer_allows_stops_the_execution(
    estate, client_, requester, approver, second_approver
):
    account_request = approved(
        requester,
        approver,
        second_approver,
        instance_id=REPL_OK,
        name="replicator1",
        privilege="RoleRepl",
    )
    # Migrated to a cluster after the approval: RoleRepl is no longer possible there.
    estate.add_instance(
        InstanceId=REPL_OK, RegionId="cn-hangzhou", EngineVersion="4.0", ArchitectureType="cluster"
    )

    with pytest.raises(workflow.TransitionError) as refused:
        execute(account_request, requester, client_)

    assert refused.value.preflight.check("privilege").status == "blocked"
    assert not estate.calls("CreateAccount")
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED


def test_an_instance_that_stopped_running_after_approval_stops_the_execution(
    estate, client_, requester, approver
):
    account_request = approved(requester, approver)
    estate.add_instance(
        InstanceId=HEALTHY, RegionId="cn-hangzhou", EngineVersion="5.0", InstanceStatus="Changing"
    )

    with pytest.raises(workflow.TransitionError):
        execute(account_request, requester, client_)

    assert not estate.calls("CreateAccount")


# --- 3. The approval policy is read from the database --------------------------------


def admin_sets_policy(privilege: str, **fields) -> None:
    """An admin's change to the creation policy of a privilege: the row the migration
    seeded, or a new one where a transactional test's flush has taken the seeded rows."""
    ApprovalPolicy.objects.update_or_create(
        kind="create", account_privilege=privilege, defaults=fields
    )


def test_an_approval_policy_changed_by_an_admin_is_honoured(estate, requester, approver):
    admin_sets_policy("RoleReadOnly", approvals_required=2)

    account_request = submitted_request(requester)
    approve(account_request, approver)

    account_request.refresh_from_db()
    assert account_request.approvals_required == 2
    assert account_request.status == Status.PENDING
    assert workflow.approvals_required_for("RoleReadOnly") == 2


@pytest.mark.parametrize("privilege", ["RoleReadOnly", "RoleReadWrite"])
def test_the_request_form_submits_with_the_policy_its_expiry_check_read(
    estate, requester, privilege
):
    """The form reads a creation's policy for its expiry check and hands it to
    request_submit (one read for both): the approvals stored are the admin's."""
    from django.test import Client
    from django.urls import reverse

    admin_sets_policy(privilege, approvals_required=3, max_lifetime_days=30)
    client = Client()
    client.force_login(requester)

    response = client.post(
        reverse("request_new"),
        request_form_data(account_privilege=privilege, expires_in_days="10"),
    )

    assert response.status_code == 302
    assert AccountRequest.objects.get().approvals_required == 3


@pytest.mark.parametrize(
    ("privilege", "required"), [("RoleReadOnly", 1), ("RoleReadWrite", 1), ("RoleRepl", 2)]
)
def test_without_a_policy_row_the_built_in_defaults_apply(db, privilege, required):
    ApprovalPolicy.objects.all().delete()
    assert workflow.approvals_required_for(privilege) == required


def test_a_privilege_unknown_to_every_table_needs_one_approval(db):
    assert workflow.approvals_required_for("RoleSomethingNew") == 1


# --- 5. Reconciliation leaves executions in flight alone -----------------------------


class ServerDiesMidCall:
    """The app server dies while CreateAccount is on the wire: nothing records an outcome."""

    def __init__(self, client):
        self.client = client

    def __getattr__(self, name):
        return getattr(self.client, name)

    def create_account(self, **params):
        raise SystemExit("worker killed")


def test_a_claimed_execution_records_who_runs_it_and_since_when(
    estate, client_, requester, approver
):
    account_request = approved(requester, approver)
    before = timezone.now()

    with pytest.raises(SystemExit):
        execute(account_request, requester, ServerDiesMidCall(client_))

    account_request.refresh_from_db()
    assert account_request.status == Status.EXECUTING
    assert account_request.executed_by == requester
    assert before <= account_request.executing_since <= timezone.now()


def test_reconciliation_waits_five_minutes_before_taking_over_an_execution(
    estate, client_, requester, approver, monkeypatch
):
    account_request = approved(requester, approver)
    with pytest.raises(SystemExit):
        execute(account_request, requester, ServerDiesMidCall(client_))
    estate.clear_calls()

    workflow.reconcile_all(client=client_)

    # Still in flight as far as anyone knows: no second look, no status change.
    account_request.refresh_from_db()
    assert account_request.status == Status.EXECUTING
    assert not estate.calls("DescribeAccounts")

    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(minutes=5, seconds=1))
    workflow.reconcile_all(client=client_)

    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED  # nothing was created: try again
    assert [e.action for e in account_request.events.order_by("seq")][-2:] == [
        "outcome_unknown",
        "reconciled",
    ]


def test_the_execution_that_finished_records_who_created_the_account(
    estate, client_, requester, approver
):
    account_request = approved(requester, approver)

    execute(account_request, requester, client_)

    account_request.refresh_from_db()
    assert account_request.executed_by == requester
    assert account_request.status == Status.CREATED


# --- 6. A definite refusal ends the request ------------------------------------------


class SomeoneElseGetsThereFirst:
    """Between the pre-flight and CreateAccount, the instance changes at the simulator."""

    def __init__(self, client, change):
        self.client, self.change = client, change

    def __getattr__(self, name):
        return getattr(self.client, name)

    def create_account(self, **params):
        self.change(params)
        return self.client.create_account(**params)


def take_the_name(estate):
    return lambda params: estate.add_account(params["instance_id"], params["account_name"])


def fill_the_instance(estate):
    def fill(params):
        # The limit counts the accounts users created, not the built-in ones.
        created = [
            a for a in estate.accounts(params["instance_id"]) if a["AccountType"] == "Normal"
        ]
        for n in range(MAX_ACCOUNTS_PER_INSTANCE - len(created)):
            estate.add_account(params["instance_id"], f"filler_{n}")

    return fill


@pytest.mark.parametrize(
    ("race", "code"),
    [
        (take_the_name, "InvalidAccountName.Duplicate"),
        (fill_the_instance, "AccountLimitExceeded"),
    ],
)
def test_a_definite_refusal_ends_the_request_as_failed_and_tells_the_requester(
    estate, client_, requester, approver, django_capture_on_commit_callbacks, race, code
):
    requester.email = "alice@example.com"
    requester.save()
    account_request = approved(requester, approver)
    mail.outbox.clear()
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        result = execute(
            account_request, requester, SomeoneElseGetsThereFirst(client_, race(estate))
        )

    assert not result.created
    assert result.error.code == code
    account_request.refresh_from_db()
    assert account_request.status == Status.FAILED
    assert account_request.error_code == code
    assert account_request.error_message == str(result.error.human_message)
    assert account_request.alibaba_request_id == result.error.request_id != ""
    assert before <= account_request.finished_at <= timezone.now()
    [failed] = events(account_request, "execution_failed")
    assert (failed.outcome, failed.error_code) == ("failure", code)
    # The audit log says it from the code, in the reader's language (audit/messages.py).
    assert failed.message_id == "execution.api_error"
    assert event_text(failed) == account_request.error_message
    assert failed.alibaba_request_id == account_request.alibaba_request_id
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    # Ended: it cannot be executed again.
    with pytest.raises(workflow.TransitionError):
        execute(account_request, requester, client_)


def test_a_failure_that_retrying_can_cure_keeps_the_approval_without_a_finish_time(
    estate, client_, requester, approver
):
    account_request = approved(requester, approver)
    estate.add_fault("http503", action="CreateAccount", count=100)

    result = execute(account_request, requester, client_)

    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED
    assert account_request.finished_at is None
    assert account_request.error_code == "ServiceUnavailable"
    assert account_request.alibaba_request_id == result.error.request_id


# --- 10. Decisions, expiry, cancellation ---------------------------------------------


def test_the_approvers_comment_is_kept_on_the_decision_and_in_the_audit_log(
    estate, requester, approver
):
    account_request = submitted_request(requester)

    approve(account_request, approver, comment="Read-only is fine for reports.")

    decision = Decision.objects.get(request=account_request)
    assert (decision.approver, decision.verdict) == (approver, "approve")
    assert decision.comment == "Read-only is fine for reports."
    [event] = events(account_request, "request_approved")
    assert event.comment == "[1/1] Read-only is fine for reports."


def test_a_rejection_keeps_the_reason_and_finishes_the_request(estate, requester, approver):
    account_request = submitted_request(requester)

    workflow.request_reject(
        request_id=account_request.pk,
        approver=approver,
        comment="Use the shared reader.",
        origin=origin_of(approver),
    )

    account_request.refresh_from_db()
    assert account_request.finished_at is not None
    assert Decision.objects.get(request=account_request).comment == "Use the shared reader."
    assert events(account_request, "request_rejected")[0].comment == "Use the shared reader."


def test_a_pending_request_is_stale_only_after_its_full_time_to_live(estate, requester, settings):
    account_request = submitted_request(requester)
    ttl = timedelta(days=settings.REQUEST_TTL_DAYS)

    assert not account_request.is_stale(account_request.created_at + ttl)
    assert account_request.is_stale(account_request.created_at + ttl + timedelta(microseconds=1))


def test_an_approval_is_stale_only_after_its_full_time_to_live(
    estate, requester, approver, settings
):
    account_request = approved(requester, approver)
    ttl = timedelta(hours=settings.APPROVAL_TTL_HOURS)

    assert not account_request.is_stale(account_request.approved_at + ttl)
    assert account_request.is_stale(account_request.approved_at + ttl + timedelta(microseconds=1))


def test_deciding_on_a_stale_request_expires_it_instead(estate, requester, approver, settings):
    account_request = submitted_request(requester)
    AccountRequest.objects.filter(pk=account_request.pk).update(
        created_at=timezone.now() - timedelta(days=settings.REQUEST_TTL_DAYS, minutes=1)
    )

    with pytest.raises(workflow.TransitionError):
        approve(account_request, approver)

    account_request.refresh_from_db()
    assert account_request.status == Status.EXPIRED
    assert account_request.finished_at is not None
    assert not Decision.objects.filter(request=account_request).exists()
    [expired] = events(account_request, "request_expired")
    assert event_text(expired) == "Expired while waiting for approval."


def test_the_cancel_event_is_linked_to_its_request(estate, requester):
    account_request = submitted_request(requester)

    workflow.request_cancel(
        request_id=account_request.pk, user=requester, origin=origin_of(requester)
    )

    [cancelled] = AuditEvent.objects.filter(action="request_cancelled")
    assert cancelled.request_id == account_request.pk
    assert (cancelled.actor, cancelled.account_name) == (requester, "app_reader")
    account_request.refresh_from_db()
    assert account_request.finished_at is not None


# --- Refusals say why, in the request's own words ------------------------------------


def test_a_rejection_without_a_reason_is_refused_and_says_the_requester_will_read_it(
    estate, requester, approver
):
    account_request = submitted_request(requester)

    with pytest.raises(workflow.TransitionError) as refused:
        workflow.request_reject(
            request_id=account_request.pk,
            approver=approver,
            comment="   ",
            origin=origin_of(approver),
        )

    assert str(refused.value.message) == (
        "Say why you reject the request: the requester will read it."
    )
    account_request.refresh_from_db()
    assert account_request.status == Status.PENDING


def test_cancelling_a_finished_request_is_refused_naming_its_status(estate, requester, approver):
    account_request = submitted_request(requester)
    workflow.request_reject(
        request_id=account_request.pk,
        approver=approver,
        comment="Use the shared reader.",
        origin=origin_of(approver),
    )

    with pytest.raises(workflow.TransitionError) as refused:
        workflow.request_cancel(
            request_id=account_request.pk, user=requester, origin=origin_of(requester)
        )

    assert str(refused.value.message) == "This request is Rejected: it can no longer be cancelled."
    assert not events(account_request, "request_cancelled")


# --- The scheduled jobs sign what they change ----------------------------------------


def test_the_expiry_job_signs_its_audit_events_with_its_name(estate, requester, settings):
    account_request = submitted_request(requester)
    AccountRequest.objects.filter(pk=account_request.pk).update(
        created_at=timezone.now() - timedelta(days=settings.REQUEST_TTL_DAYS, minutes=1)
    )

    assert workflow.expire_requests() == 1

    [expired] = events(account_request, "request_expired")
    assert (expired.actor, expired.actor_name) == (None, "expire_requests")


def test_the_reconciliation_job_signs_its_audit_events_with_its_name(
    estate, client_, requester, approver, monkeypatch
):
    account_request = approved(requester, approver)
    with pytest.raises(SystemExit):
        execute(account_request, requester, ServerDiesMidCall(client_))
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(minutes=6))

    workflow.reconcile_all(client=client_)

    signed = {(e.action, e.actor_name) for e in account_request.events.filter(actor__isnull=True)}
    assert signed == {
        ("outcome_unknown", "reconcile_requests"),
        ("reconciled", "reconcile_requests"),
    }


# --- Reconciling one request by hand --------------------------------------------------


def lost_call(requester, *, created: bool, estate):
    """A request whose CreateAccount outcome was lost; ``created``: it reached Alibaba."""
    account_request = request_row(
        requester,
        Instance.objects.get(instance_id=HEALTHY),
        "app_reader",
        status=Status.NEEDS_RECONCILIATION,
    )
    if created:
        estate.add_account(HEALTHY, "app_reader", privilege="RoleReadOnly")
    return account_request


def test_reconciling_a_request_whose_account_exists_records_it_as_created(
    estate, client_, requester, approver
):
    account_request = lost_call(requester, created=True, estate=estate)
    estate.clear_calls()

    workflow.reconcile_request(
        request_id=account_request.pk, origin=origin_of(approver), client=client_
    )

    account_request.refresh_from_db()
    assert account_request.status == Status.CREATED
    [reconciled] = events(account_request, "reconciled")
    assert (reconciled.actor, reconciled.outcome) == (approver, "success")
    assert event_text(reconciled) == "Found by DescribeAccounts: the account exists."
    # Asked about this account alone, not the whole instance's list.
    assert [c["params"].get("AccountName") for c in estate.calls("DescribeAccounts")] == [
        "app_reader"
    ]


def test_reconciling_a_request_whose_account_is_absent_gives_the_approval_back(
    estate, client_, requester, approver
):
    account_request = lost_call(requester, created=False, estate=estate)
    AccountRequest.objects.filter(pk=account_request.pk).update(
        error_code="Client.Timeout", error_message="no answer"
    )

    workflow.reconcile_request(
        request_id=account_request.pk, origin=origin_of(approver), client=client_
    )

    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED
    [reconciled] = events(account_request, "reconciled")
    assert reconciled.outcome == "failure"
    assert reconciled.message_id == "reconcile.not_found"
    # The lost call's error is settled: the request reads as a fresh approval.
    assert (account_request.error_code, account_request.error_message) == ("", "")


def test_only_a_request_of_unknown_outcome_can_be_reconciled(estate, client_, requester, approver):
    account_request = approved(requester, approver)
    estate.clear_calls()

    with pytest.raises(workflow.TransitionError) as refused:
        workflow.reconcile_request(
            request_id=account_request.pk, origin=origin_of(approver), client=client_
        )

    assert str(refused.value.message) == "This request does not need reconciliation."
    assert not estate.calls("DescribeAccounts")


# --- The request form's live pre-flight -----------------------------------------------


def test_the_forms_pre_flight_waits_for_an_instance_that_exists(estate, requester):
    Instance.objects.filter(instance_id=REPL_OK).update(is_gone=True)

    for instance_id in ("", "r-bp1nosuchinstance0", REPL_OK):
        assert (
            workflow.preflight_for_form(
                instance_id=instance_id,
                account_name="app_reader",
                privilege="RoleReadOnly",
                viewer=requester,
            )
            is None
        )


def test_the_forms_pre_flight_checks_the_name_and_the_privilege_live(estate, requester):
    estate.add_account(HEALTHY, "app_reader")

    result = workflow.preflight_for_form(
        instance_id=HEALTHY, account_name="app_reader", privilege="RoleRepl", viewer=requester
    )

    assert result.live
    assert result.check("account_name").status == "blocked"
    assert result.check("privilege").status == "blocked"  # 5.0: no RoleRepl


def test_the_forms_pre_flight_says_a_name_the_rules_refuse_was_not_checked(estate, requester):
    result = workflow.preflight_for_form(
        instance_id=HEALTHY, account_name="9 not a name", privilege="", viewer=requester
    )

    # Not looked up (no name check, no open-request check), and said so: issue 21, bug 8.
    assert result.check("account_name").status == "blocked"
    assert "did not run" in result.check("account_name").message
    assert result.check("open_request") is None
    assert not result.can_proceed
    assert result.check("privilege") is None
    assert result.check("instance").status == "ok"


def test_the_forms_pre_flight_uses_the_synced_facts_once_the_viewers_budget_is_spent(
    estate, requester, settings
):
    settings.LIVE_CALLS_PER_MINUTE = 0  # spent before the first call
    estate.clear_calls()

    result = workflow.preflight_for_form(
        instance_id=HEALTHY, account_name="app_reader", privilege="", viewer=requester
    )

    assert not result.live
    assert not estate.calls()


# --- Each refusal tells the user why ------------------------------------------------


def refusal(action, *args, **kwargs) -> str:
    with pytest.raises(workflow.TransitionError) as refused:
        action(*args, **kwargs)
    return str(refused.value.message)


def test_a_request_the_instance_cannot_take_is_refused_pointing_at_the_checks(estate, requester):
    estate.add_account(HEALTHY, "app_reader")

    assert refusal(submitted_request, requester) == (
        "This account cannot be created on this instance; see the pre-flight checks."
    )
    assert not AccountRequest.objects.exists()


def test_only_someone_else_may_decide_and_only_once(estate, requester, approver, second_approver):
    admin_sets_policy("RoleReadOnly", approvals_required=2)
    account_request = submitted_request(requester)

    assert refusal(approve, account_request, requester) == (
        "Nobody may approve or reject their own request."
    )
    approve(account_request, approver)
    assert refusal(approve, account_request, approver) == (
        "You have already decided on this request."
    )


def test_deciding_on_a_decided_request_is_refused_naming_its_status(
    estate, requester, approver, second_approver
):
    account_request = approved(requester, approver)

    assert refusal(approve, account_request, second_approver) == (
        "This request is Approved: it can no longer be approved or rejected."
    )


def test_only_the_requester_may_cancel_or_execute(estate, client_, requester, approver):
    account_request = approved(requester, approver)

    assert refusal(
        workflow.request_cancel,
        request_id=account_request.pk,
        user=approver,
        origin=origin_of(approver),
    ) == ("Only the requester can cancel a request.")
    assert refusal(execute, account_request, approver, client_) == (
        "Only the requester creates the account once it is approved."
    )
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED


def test_executing_a_request_not_yet_approved_is_refused_naming_its_status(
    estate, client_, requester
):
    account_request = submitted_request(requester)

    assert refusal(execute, account_request, requester, client_) == (
        "This request is Pending approval: there is nothing to create."
    )


def test_executing_after_the_approval_expired_says_to_submit_again(
    estate, client_, requester, approver, settings
):
    account_request = approved(requester, approver)
    AccountRequest.objects.filter(pk=account_request.pk).update(
        approved_at=timezone.now() - timedelta(hours=settings.APPROVAL_TTL_HOURS, minutes=1)
    )

    assert refusal(execute, account_request, requester, client_) == (
        "The approval has expired: submit a new request."
    )


def test_an_execution_the_instance_cannot_take_now_points_at_the_checks(
    estate, client_, requester, approver
):
    account_request = approved(requester, approver)
    estate.add_account(HEALTHY, "app_reader")

    assert refusal(execute, account_request, requester, client_) == (
        "The account cannot be created right now; see the pre-flight checks."
    )


# --- A duplicate name after a lost call is the lost call's account --------------------


def lose_the_call(account_request, requester, client, monkeypatch):
    """CreateAccount's outcome lost, then found absent: approved again, with an
    outcome_unknown event in the request's history."""
    with pytest.raises(SystemExit):
        execute(account_request, requester, ServerDiesMidCall(client))
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(minutes=6))
    workflow.reconcile_all(client=client)
    monkeypatch.setattr(timezone, "now", real_now)
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED


def test_a_duplicate_name_after_a_lost_call_is_reconciled_as_created(
    estate, client_, requester, approver, monkeypatch
):
    account_request = approved(requester, approver)
    lose_the_call(account_request, requester, client_, monkeypatch)

    # The lost call's account shows up just as the retry is sent.
    result = execute(
        account_request, requester, SomeoneElseGetsThereFirst(client_, take_the_name(estate))
    )

    assert result.created
    account_request.refresh_from_db()
    assert account_request.status == Status.CREATED


def test_a_duplicate_name_is_a_failure_when_only_another_request_lost_a_call(
    estate, client_, requester, approver, monkeypatch
):
    other = approved(requester, approver, name="other_reader")
    lose_the_call(other, requester, client_, monkeypatch)
    account_request = approved(requester, approver)

    result = execute(
        account_request, requester, SomeoneElseGetsThereFirst(client_, take_the_name(estate))
    )

    assert not result.created
    account_request.refresh_from_db()
    assert account_request.status == Status.FAILED


# --- What an unknown outcome records ---------------------------------------------------


def test_an_execution_whose_server_died_is_recorded_as_stopped_before_its_outcome(
    estate, client_, requester, approver, monkeypatch, caplog
):
    account_request = approved(requester, approver)
    with pytest.raises(SystemExit):
        execute(account_request, requester, ServerDiesMidCall(client_))
    # DescribeAccounts does not answer either: the request waits, saying why.
    estate.add_fault("http503", action="DescribeAccounts", count=100)
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(minutes=6))

    workflow.reconcile_all(client=client_)

    account_request.refresh_from_db()
    assert account_request.status == Status.NEEDS_RECONCILIATION
    assert account_request.error_code == "OutcomeUnknown"
    assert account_request.error_message == "the execution stopped before its outcome"
    [unknown] = events(account_request, "outcome_unknown")
    assert (unknown.outcome, unknown.error_code) == ("unknown", "OutcomeUnknown")
    assert event_text(unknown) == "The execution stopped before its outcome was known."
    # The operator's log names the request and the code DescribeAccounts failed with.
    assert f"reconcile of request {account_request.pk} failed: ServiceUnavailable" in [
        r.getMessage() for r in caplog.records if r.levelname == "WARNING"
    ]


def test_a_lost_answer_is_recorded_with_the_errors_code_and_sentence(
    estate, client_, requester, approver
):
    account_request = approved(requester, approver)
    estate.add_fault("commit_then_timeout", action="CreateAccount", delay=3)
    estate.add_fault("http503", action="DescribeAccounts", count=100)
    counting = ClientThatCounts(client_)

    result = execute(account_request, requester, counting)

    assert counting.asked[-1] == "app_reader"  # the reconciliation asked through it too

    account_request.refresh_from_db()
    assert account_request.status == Status.NEEDS_RECONCILIATION
    assert result.error.code not in ("", "OutcomeUnknown")
    assert account_request.error_code == result.error.code
    assert account_request.error_message == str(result.error.human_message)
    [unknown] = events(account_request, "outcome_unknown")
    assert (unknown.outcome, unknown.error_code) == ("unknown", result.error.code)
    assert unknown.message_id == "execution.api_error"


class ClientThatCounts:
    """The simulator's client, counting the DescribeAccounts calls made through it."""

    def __init__(self, client):
        self.client, self.asked = client, []

    def __getattr__(self, name):
        return getattr(self.client, name)

    def describe_accounts(self, **params):
        self.asked.append(params.get("account_name"))
        return self.client.describe_accounts(**params)


def test_reconciliation_asks_through_the_client_it_is_given(estate, client_, requester, approver):
    by_hand = lost_call(requester, created=True, estate=estate)
    counting = ClientThatCounts(client_)

    workflow.reconcile_request(request_id=by_hand.pk, origin=origin_of(approver), client=counting)
    assert counting.asked == ["app_reader"]

    by_job = request_row(
        requester,
        Instance.objects.get(instance_id=HEALTHY),
        "app_writer",
        status=Status.NEEDS_RECONCILIATION,
    )
    workflow.reconcile_all(client=counting)
    assert counting.asked == ["app_reader", "app_writer"]
    by_job.refresh_from_db()
    assert by_job.status == Status.APPROVED


def test_a_stuck_execution_that_finished_meanwhile_does_not_stop_the_others(
    estate, client_, requester, approver, monkeypatch
):
    stuck = [
        approved(requester, approver, name="first_reader"),
        approved(requester, approver, name="second_reader"),
    ]
    for account_request in stuck:
        with pytest.raises(SystemExit):
            execute(account_request, requester, ServerDiesMidCall(client_))
    record_outcome_unknown = workflow._record_outcome_unknown
    finished = []

    def the_first_finishes_just_before(account_request, error, origin):
        if not finished:  # its server came back and recorded the account
            AccountRequest.objects.filter(pk=account_request.pk).update(status=Status.CREATED)
            finished.append(account_request.pk)
        return record_outcome_unknown(account_request, error, origin)

    monkeypatch.setattr(workflow, "_record_outcome_unknown", the_first_finishes_just_before)
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(minutes=6))

    workflow.reconcile_all(client=client_)

    [other] = [r for r in stuck if r.pk not in finished]
    other.refresh_from_db()
    assert other.status == Status.APPROVED  # taken over, found absent: try again
    assert AccountRequest.objects.get(pk=finished[0]).status == Status.CREATED


class CallNeverLeaves:
    """CreateAccount fails before anything is sent: no answer, so no request id."""

    def __init__(self, client):
        self.client = client

    def __getattr__(self, name):
        return getattr(self.client, name)

    def create_account(self, **params):
        raise ApiUnreachable(
            "ServiceUnavailable", "the API's own words", recommend="https://example.com/diagnose"
        )


def test_a_failure_without_an_answer_records_no_request_id(estate, client_, requester, approver):
    account_request = approved(requester, approver)

    result = execute(account_request, requester, CallNeverLeaves(client_))

    assert result.created is False
    assert result.request.pk == account_request.pk
    # Only the code is kept: the API's free text and its link are dropped.
    assert (result.error.message, result.error.recommend) == ("", None)
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED
    assert (account_request.error_code, account_request.alibaba_request_id) == (
        "ServiceUnavailable",
        "",
    )
    [failed] = events(account_request, "execution_failed")
    assert (failed.error_code, failed.alibaba_request_id) == ("ServiceUnavailable", "")


# --- Every kind of request honours the policy's lifetime -------------------------------


def test_an_expiry_the_policy_does_not_allow_is_refused_for_every_kind(db):
    admin_sets_policy("RoleReadWrite", max_lifetime_days=30, allow_no_expiry=False)
    now = timezone.now()

    with pytest.raises(workflow.TransitionError) as refused:
        workflow.check_expiry("RoleReadWrite", None)
    assert str(refused.value.message) == (
        "This privilege needs an expiry, at most 30 days from today."
    )
    with pytest.raises(workflow.TransitionError):
        workflow.check_expiry("RoleReadWrite", now + timedelta(days=31))
    workflow.check_expiry("RoleReadWrite", now + timedelta(days=29))
    workflow.check_expiry("RoleReadOnly", None)  # its own row allows no expiry


def test_a_refusal_reads_as_its_message_wherever_it_is_printed():
    assert str(workflow.TransitionError("Only the requester can cancel a request.")) == (
        "Only the requester can cancel a request."
    )


def test_the_forms_pre_flight_finds_a_free_valid_name_free(estate, requester):
    result = workflow.preflight_for_form(
        instance_id=HEALTHY, account_name="fresh_reader", privilege="RoleReadOnly", viewer=requester
    )

    assert result.check("account_name").status == "ok"
    assert result.can_proceed


def test_the_forms_pre_flight_names_the_viewers_own_open_request_by_its_number(estate, requester):
    open_one = submitted_request(requester)

    result = workflow.preflight_for_form(
        instance_id=HEALTHY, account_name="app_reader", privilege="RoleReadOnly", viewer=requester
    )

    assert result.check("open_request").message == (
        f"Request #{open_one.pk} for “app_reader” on this instance is still open."
    )


def test_a_reconciled_account_clears_the_lost_calls_error_and_counts_on_its_instance(
    estate, client_, requester, approver
):
    instance = Instance.objects.get(instance_id=HEALTHY)
    Instance.objects.filter(pk=instance.pk).update(account_count=3)
    account_request = request_row(
        requester,
        instance,
        "app_reader",
        status=Status.NEEDS_RECONCILIATION,
        error_code="Client.Timeout",
        error_message="no answer",
    )
    estate.add_account(HEALTHY, "app_reader", privilege="RoleReadOnly")

    workflow.reconcile_request(
        request_id=account_request.pk, origin=origin_of(approver), client=client_
    )

    account_request.refresh_from_db()
    assert account_request.status == Status.CREATED
    assert (account_request.error_code, account_request.error_message) == ("", "")
    assert account_request.alibaba_request_id == ""  # no CreateAccount answer to keep
    assert account_request.finished_at is not None
    [reconciled] = events(account_request, "reconciled")
    assert reconciled.alibaba_request_id == ""
    assert Instance.objects.get(pk=instance.pk).account_count == 4


def test_the_created_event_keeps_the_request_id_of_createaccounts_answer(
    estate, client_, requester, approver
):
    account_request = approved(requester, approver)

    execute(account_request, requester, client_)

    account_request.refresh_from_db()
    [created] = events(account_request, "account_created")
    assert created.alibaba_request_id == account_request.alibaba_request_id != ""
    assert created.alibaba_request_id == estate.calls("CreateAccount")[-1]["request_id"]


def test_a_fleet_request_is_not_run_as_a_single_one(estate, client_, requester):
    fleet = request_row(
        requester,
        Instance.objects.get(instance_id=HEALTHY),
        "app_reader",
        status=Status.APPROVED,
        fleet_size=2,
    )

    assert refusal(execute, fleet, requester, client_) == (
        "This request names many instances: run it from its page."
    )


def test_a_transition_from_a_status_the_request_has_left_is_refused(estate, requester):
    account_request = submitted_request(requester)

    with pytest.raises(workflow.TransitionError) as refused:
        workflow._compare_and_set(account_request, Status.APPROVED, status=Status.EXECUTING)

    assert str(refused.value.message) == (
        "Someone else changed this request at the same moment; reload it."
    )
    account_request.refresh_from_db()
    assert account_request.status == Status.PENDING


def test_a_stale_request_that_moved_on_meanwhile_is_returned_as_it_is_now(
    estate, requester, approver, settings, monkeypatch
):
    account_request = submitted_request(requester)
    AccountRequest.objects.filter(pk=account_request.pk).update(
        created_at=timezone.now() - timedelta(days=settings.REQUEST_TTL_DAYS, minutes=1)
    )
    compare_and_set = workflow._compare_and_set

    def cancelled_just_before(account_request, expected, **fields):
        AccountRequest.objects.filter(pk=account_request.pk).update(status=Status.CANCELLED)
        return compare_and_set(account_request, expected, **fields)

    monkeypatch.setattr(workflow, "_compare_and_set", cancelled_just_before)

    now = workflow.unexpired_request(request_id=account_request.pk, origin=origin_of(approver))

    assert (now.pk, now.status) == (account_request.pk, Status.CANCELLED)
    assert (now.instance.instance_id, now.requester) == (HEALTHY, requester)
    assert not events(account_request, "request_expired")


def test_a_page_views_pre_flight_is_live_only_within_the_viewers_budget(
    estate, requester, settings
):
    account_request = submitted_request(requester)
    settings.LIVE_CALLS_PER_MINUTE = 0  # spent
    counting = ClientThatCounts(estate.client())

    on_a_page = workflow.preflight_for(
        account_request, client=counting, viewer=requester, page_view=True
    )
    elsewhere = workflow.preflight_for(account_request, client=counting, viewer=requester)

    assert not on_a_page.live
    assert elsewhere.live
    assert counting.asked  # the live check asked through the client it was given


def test_a_change_of_unknown_outcome_is_reconciled_through_the_client_given(
    estate, client_, requester, approver
):
    estate.add_account(HEALTHY, "legacy_etl", privilege="RoleReadOnly")
    account_request = lifecycle.request_submit(
        kind=AccountRequest.Kind.DELETE,
        requester=requester,
        instance=Instance.objects.get(instance_id=HEALTHY),
        account_name="legacy_etl",
        origin=origin_of(requester),
        account_privilege="RoleReadOnly",
        account_description="",
        account_type="Normal",
        justification="Cleaning up.",
    )
    approve(account_request, approver)
    AccountRequest.objects.filter(pk=account_request.pk).update(status=Status.NEEDS_RECONCILIATION)
    estate.simulator.store.remove_account(HEALTHY, "legacy_etl")  # the deletion was made
    counting = ClientThatCounts(client_)

    workflow.reconcile_request(
        request_id=account_request.pk, origin=origin_of(approver), client=counting
    )

    account_request.refresh_from_db()
    assert account_request.status == Status.CREATED
    assert counting.asked == ["legacy_etl"]
    [reconciled] = events(account_request, "reconciled")
    assert reconciled.actor == approver


def test_an_approver_given_their_role_by_the_requester_may_not_decide(estate, requester, approver):
    account_request = submitted_request(requester)
    RoleGrant.objects.create(user=approver, granted_by=requester, what="group Approvers")

    assert refusal(approve, account_request, approver) == (
        "You were given your role or your account by the requester: someone else "
        "must decide on their requests."
    )
    assert not Decision.objects.filter(request=account_request).exists()


def test_a_fleet_of_unknown_outcome_is_reconciled_through_the_client_given(
    estate, client_, requester, approver
):
    alice, bob = ApiClient(token_for(requester)), ApiClient(token_for(approver))
    ids = ["r-fleet000", "r-fleet001"]
    for instance_id in ids:
        empty_instance(estate, instance_id)
    body = {**request_form_data(account_name="order_ro"), "instance_ids": ids}
    del body["instance_id"]
    pk = alice.post("/requests", body).json()["id"]
    bob.post(f"/requests/{pk}/approve", {"comment": "ok"})
    estate.add_fault("commit_then_timeout", action="CreateAccount", instance_id=ids[0], delay=3)
    estate.add_fault("http503", action="DescribeAccounts", instance_id=ids[0], count=0)
    alice.post(
        f"/requests/{pk}/execute", {"account_password": PASSWORD}, **{"Idempotency-Key": "k"}
    )
    estate.clear_faults()
    counting = ClientThatCounts(client_)

    settled = workflow.reconcile_request(request_id=pk, origin=origin_of(approver), client=counting)

    assert (settled.pk, settled.status) == (pk, Status.CREATED)
    assert counting.asked == ["order_ro"]
    [reconciled] = AuditEvent.objects.filter(request_id=pk, action="reconciled")
    assert reconciled.actor == approver


def test_a_submission_is_checked_live_for_its_privilege_and_names_the_requesters_open_one(
    estate, client_, requester
):
    counting = ClientThatCounts(client_)
    first = submitted_request(requester, client=counting)
    assert counting.asked  # the pre-flight asked through the client it was given

    with pytest.raises(workflow.TransitionError) as again:
        submitted_request(requester)
    assert again.value.preflight.check("open_request").message == (
        f"Request #{first.pk} for “app_reader” on this instance is still open."
    )
    with pytest.raises(workflow.TransitionError) as repl:
        submitted_request(requester, name="replicator1", privilege="RoleRepl")  # 5.0: no RoleRepl
    assert repl.value.preflight.check("privilege").status == "blocked"


def test_a_submission_with_an_expiry_the_policy_allows_is_accepted(estate, requester):
    ApprovalPolicy.objects.filter(kind="create", account_privilege="RoleReadWrite").update(
        max_lifetime_days=30, allow_no_expiry=False
    )
    expires_at = timezone.now() + timedelta(days=10)

    account_request = submitted_request(requester, privilege="RoleReadWrite", expires_at=expires_at)

    account_request.refresh_from_db()
    assert account_request.expires_at == expires_at


def test_the_decision_mail_names_the_approver(
    estate, requester, approver, django_capture_on_commit_callbacks
):
    requester.email = "alice@example.com"
    requester.save()
    account_request = submitted_request(requester)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        approve(account_request, approver)

    [decided] = mail.outbox
    assert f"{approver.get_username()} decided on your request for app_reader" in decided.body


# --- The other open request for the same account, at execution and on the page ------------


def fleet_holding(name: str, instance: Instance, requester) -> AccountRequest:
    """An open fleet request of another requester whose instances include `instance`."""
    from accounts_app.models import FleetTarget
    from tests.builders import instance_row

    elsewhere = instance_row(f"r-bp1fleet{name}")
    fleet = request_row(requester, elsewhere, name, fleet_size=2)
    FleetTarget.objects.create(request=fleet, instance=elsewhere, position=0)
    FleetTarget.objects.create(request=fleet, instance=instance, position=1)
    return fleet


def test_an_execution_is_refused_while_a_fleet_request_holds_the_same_account(
    estate, requester, other_requester, approver
):
    """The execute-time pre-flight reads the other open requests itself: none was read
    with the request (preflight_for's ``open_rival``)."""
    single = approved_request(requester, approver)
    fleet_holding("app_reader", single.instance, other_requester)

    with pytest.raises(workflow.TransitionError) as refused:
        workflow.request_execute(
            request_id=single.pk,
            user=requester,
            account_password="Str0ng-Passw0rd",
            origin=origin_of(requester),
        )

    assert refused.value.preflight.check("open_request").status == "blocked"
    assert "app_reader" not in estate.account_names(single.instance.instance_id)
    single.refresh_from_db()
    assert single.status == Status.APPROVED


def test_a_request_read_with_its_rival_is_checked_against_that_rival(
    estate, requester, other_requester
):
    """The request's page reads the other open request with the request
    (selectors.visible_request): the pre-flight takes it from there, not from a read
    of its own (which would find none here)."""
    single = submitted_request(requester)
    single.open_rival = AccountRequest(pk=single.pk + 1000, requester_id=other_requester.pk)

    result = workflow.preflight_for(single, viewer=requester)

    assert result.check("open_request").message == (
        "Another open request for “app_reader” on this instance already exists."
    )
    single.open_rival = None
    assert workflow.preflight_for(single, viewer=requester).check("open_request").status == "ok"
