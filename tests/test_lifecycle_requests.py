"""Requests that change an existing account (delete, privilege, password, description)
through the approval workflow, against the simulator over a socket: four eyes per kind,
the policy per kind and privilege, built-in accounts never a target, exactly one call,
a busy instance that makes the next change wait, and unknown outcomes reconciled."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts_app.models import AccountRequest, ApprovalPolicy, AuditEvent, Instance
from accounts_app.services import lifecycle, workflow
from accounts_app.services.workflow import TransitionError
from tests.api_support import ApiClient, token_for
from tests.builders import approve, origin_of, request_form_data
from tests.demo_instances import HEALTHY, TAIR

pytestmark = pytest.mark.django_db

Kind = AccountRequest.Kind
Status = AccountRequest.Status
Action = AuditEvent.Action
NAME = "legacy_etl"  # made outside the dashboard, on the simulator's control API
PASSWORD = "N3w-Passw0rd!"


@pytest.fixture
def outside(estate):
    estate.add_account(HEALTHY, NAME, privilege="RoleReadOnly", description="by-hand")
    return estate


def submit(requester, kind, *, name=NAME, instance_id=HEALTHY, **fields):
    values = {
        "account_privilege": "RoleReadOnly",
        "account_description": "",
        "account_type": "Normal",
        "justification": "Cleaning up.",
        **fields,
    }
    return lifecycle.request_submit(
        kind=kind,
        requester=requester,
        instance=Instance.objects.get(instance_id=instance_id),
        account_name=name,
        origin=origin_of(requester),
        **values,
    )


def execute(account_request, user, password=""):
    return lifecycle.request_execute(
        request_id=account_request.pk,
        user=user,
        account_password=password,
        origin=origin_of(user),
    )


def on_simulator(simulator, name=NAME, instance_id=HEALTHY):
    return next((a for a in simulator.accounts(instance_id) if a["AccountName"] == name), None)


def test_a_deletion_is_approved_by_someone_else_then_deletes_once(outside, requester, approver):
    account_request = submit(requester, Kind.DELETE)
    assert (account_request.account_privilege, account_request.current_privilege) == (
        "RoleReadOnly",
        "RoleReadOnly",
    )
    with pytest.raises(TransitionError, match="own request"):
        approve(account_request, requester)
    approve(account_request, approver)

    result = execute(account_request, requester)

    assert result.created
    account_request.refresh_from_db()
    assert account_request.status == Status.CREATED
    assert account_request.alibaba_request_id
    assert on_simulator(outside) is None
    assert len(outside.calls("DeleteAccount")) == 1
    assert account_request.events.filter(action=Action.ACCOUNT_DELETED).count() == 1
    with pytest.raises(TransitionError, match="nothing to do"):
        execute(account_request, requester)
    assert len(outside.calls("DeleteAccount")) == 1


KIND_FIELDS = {
    Kind.DELETE: {},
    Kind.PRIVILEGE: {"account_privilege": "RoleReadWrite"},
    Kind.RESET_PASSWORD: {},
    Kind.DESCRIPTION: {"account_description": "nightly-etl"},
    Kind.ADOPT: {},
}


@pytest.mark.parametrize("kind", list(KIND_FIELDS))
def test_nobody_decides_on_their_own_request_of_any_kind(outside, approver, second_approver, kind):
    account_request = submit(approver, kind, **KIND_FIELDS[kind])
    with pytest.raises(TransitionError, match="own request"):
        approve(account_request, approver)
    account_request.refresh_from_db()
    assert account_request.status == Status.PENDING
    assert not account_request.decisions.exists()  # no decision was written
    approve(account_request, second_approver)
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED


@pytest.mark.parametrize(
    ("kind", "fields", "check"),
    [
        (Kind.PRIVILEGE, {"account_privilege": "RoleReadWrite"}, ("privilege", "RoleReadWrite")),
        (Kind.DESCRIPTION, {"account_description": "nightly-etl"}, ("description", "nightly-etl")),
    ],
)
def test_a_change_is_made_on_the_instance(outside, requester, approver, kind, fields, check):
    account_request = submit(requester, kind, **fields)
    approve(account_request, approver)

    assert execute(account_request, requester).created

    account = on_simulator(outside)
    privilege = account["DatabasePrivileges"]["DatabasePrivilege"][0]["AccountPrivilege"]
    seen = {"privilege": privilege, "description": account["AccountDescription"]}
    assert seen[check[0]] == check[1]


def test_a_password_reset_is_typed_at_execution(outside, requester, approver):
    account_request = submit(requester, Kind.RESET_PASSWORD)
    approve(account_request, approver)

    assert execute(account_request, requester, PASSWORD).created

    [call] = outside.calls("ResetAccountPassword")
    assert "AccountPassword" in call["body_keys"]
    account_request.refresh_from_db()
    assert account_request.events.filter(action=Action.PASSWORD_RESET).count() == 1


@pytest.mark.parametrize("name", [HEALTHY, "default"])
def test_a_built_in_account_is_never_a_target(estate, requester, name):
    instance_id = TAIR if name == "default" else HEALTHY
    with pytest.raises(TransitionError, match="built-in"):
        submit(requester, Kind.DELETE, name=name, instance_id=instance_id)
    assert not AccountRequest.objects.exists()


def test_an_account_that_does_not_exist_cannot_be_targeted(estate, requester):
    with pytest.raises(TransitionError, match="no account named"):
        submit(requester, Kind.DELETE, name="nobody_here")


def test_a_grant_of_the_privilege_it_has_is_refused(outside, requester):
    with pytest.raises(TransitionError, match="already has this privilege"):
        submit(requester, Kind.PRIVILEGE, account_privilege="RoleReadOnly")


def test_an_upgrade_needs_what_creating_read_write_needs(outside, requester):
    ApprovalPolicy.objects.update_or_create(
        kind=Kind.CREATE, account_privilege="RoleReadWrite", defaults={"approvals_required": 2}
    )
    upgrade = submit(requester, Kind.PRIVILEGE, account_privilege="RoleReadWrite")
    assert upgrade.approvals_required == 2


def test_a_deletion_may_need_its_own_approver_count(outside, requester, approver, second_approver):
    ApprovalPolicy.objects.create(
        kind=Kind.DELETE, account_privilege="RoleReadOnly", approvals_required=2
    )
    deletion = submit(requester, Kind.DELETE)
    assert deletion.approvals_required == 2
    approve(deletion, approver)
    deletion.refresh_from_db()
    assert deletion.status == Status.PENDING
    approve(deletion, second_approver)
    deletion.refresh_from_db()
    assert deletion.status == Status.APPROVED


def test_a_second_change_on_the_instance_waits_while_an_account_is_unavailable(
    outside, requester, approver
):
    outside.set_activation_delay(60)
    describe = submit(requester, Kind.DESCRIPTION, account_description="nightly-etl")
    delete = submit(requester, Kind.DELETE, name="reporting_ro")
    approve(describe, approver)
    approve(delete, approver)
    assert execute(describe, requester).created

    with pytest.raises(TransitionError, match="still being created or changed"):
        execute(delete, requester)

    delete.refresh_from_db()
    assert delete.status == Status.APPROVED
    assert outside.calls("DeleteAccount") == []
    outside.clock.advance(61)
    assert execute(delete, requester).created


@pytest.mark.parametrize(
    ("mode", "kind", "fields", "status"),
    [
        # The call did the work, then no answer: DescribeAccounts shows it done.
        ("commit_then_timeout", Kind.DELETE, {}, Status.CREATED),
        (
            "commit_then_timeout",
            Kind.PRIVILEGE,
            {"account_privilege": "RoleReadWrite"},
            Status.CREATED,
        ),
        # The connection broke before any work: the approval stands.
        ("reset", Kind.DESCRIPTION, {"account_description": "nightly-etl"}, Status.APPROVED),
        # A reset never shows: it is done again, with a new password typed.
        ("commit_then_timeout", Kind.RESET_PASSWORD, {}, Status.APPROVED),
    ],
)
def test_an_unknown_outcome_is_reconciled_never_sent_twice(
    outside, settings, requester, approver, mode, kind, fields, status
):
    settings.KVSTORE_DEADLINE = 0.5
    account_request = submit(requester, kind, **fields)
    approve(account_request, approver)
    operation = {
        Kind.DELETE: "DeleteAccount",
        Kind.PRIVILEGE: "GrantAccountPrivilege",
        Kind.DESCRIPTION: "ModifyAccountDescription",
        Kind.RESET_PASSWORD: "ResetAccountPassword",
    }[kind]
    outside.add_fault(mode, action=operation, delay=3.0)

    result = execute(account_request, requester, PASSWORD)

    account_request.refresh_from_db()
    assert account_request.status == status
    assert result.created is (status == Status.CREATED)
    assert len(outside.calls(operation)) == 1
    actions = list(account_request.events.values_list("action", flat=True))
    assert Action.OUTCOME_UNKNOWN in actions and Action.RECONCILED in actions


def test_a_throttled_deletion_is_retried_and_done(outside, requester, approver):
    account_request = submit(requester, Kind.DELETE)
    approve(account_request, approver)
    outside.add_fault("throttle", action="DeleteAccount", count=2)

    assert execute(account_request, requester).created

    assert len(outside.calls("DeleteAccount")) == 3
    assert on_simulator(outside) is None


def test_an_account_gone_since_the_approval_is_refused_before_any_call(
    outside, requester, approver
):
    account_request = submit(requester, Kind.DELETE)
    approve(account_request, approver)
    outside.simulator.store.remove_account(HEALTHY, NAME)  # gone between approval and now

    with pytest.raises(TransitionError, match="no account named"):
        execute(account_request, requester)
    account_request.refresh_from_db()
    assert account_request.status == Status.APPROVED  # nothing was called


# --- The form and the API -------------------------------------------------------------------------


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_form_asks_the_fields_of_the_kind(outside, requester):
    page = signed_in(requester)
    response = page.post(
        reverse("request_new"),
        request_form_data(kind="privilege", account_name=NAME, account_privilege="RoleRepl"),
    )
    assert response.status_code == 200
    assert "account_privilege" in response.context["form"].errors
    response = page.post(
        reverse("request_new"),
        request_form_data(kind="description", account_name=NAME, account_description=""),
    )
    assert "account_description" in response.context["form"].errors
    assert response.context["form"]["account_name"].value() == NAME  # what was typed stays
    assert not AccountRequest.objects.exists()


def test_a_deletion_through_the_pages(outside, requester, approver):
    page = signed_in(requester)
    response = page.post(
        reverse("request_new"), request_form_data(kind="delete", account_name=NAME)
    )
    account_request = AccountRequest.objects.get()
    assert response.status_code == 302
    assert account_request.kind == Kind.DELETE
    detail = signed_in(approver).get(reverse("request_detail", args=[account_request.pk]))
    assert 'data-kind="delete"' in detail.content.decode()
    approve(account_request, approver)

    form = page.get(reverse("request_execute", args=[account_request.pk])).content.decode()
    assert 'name="account_password"' not in form
    done = page.post(reverse("request_execute", args=[account_request.pk]), {}, follow=True)

    assert 'data-outcome="done"' in done.content.decode()
    assert len(outside.calls("DeleteAccount")) == 1
    # Done, and no account was made: neither created-accounts list names it.
    from accounts_app.selectors import audit as audit_selectors
    from accounts_app.selectors import requests as request_selectors

    assert audit_selectors.created_account_page(audit_selectors.CreatedFilter())[0] == []
    assert not request_selectors.recently_created(approver).exists()


def test_the_api_takes_a_kind_and_executes_without_a_password(outside, requester, approver):
    api = ApiClient(token_for(requester))
    created = api.post(
        "/requests",
        {
            "kind": "privilege",
            "instance_id": HEALTHY,
            "account_name": NAME,
            "account_privilege": "RoleReadWrite",
            "justification": "The job now writes.",
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["kind"], body["current_privilege"]) == ("privilege", "RoleReadOnly")
    own = api.post(f"/requests/{body['id']}/approve", {"comment": "mine"})
    assert own.status_code == 403
    assert ApiClient(token_for(approver)).post(f"/requests/{body['id']}/approve").status_code == 200

    executed = api.post(f"/requests/{body['id']}/execute", {}, **{"Idempotency-Key": "grant-1"})

    assert executed.status_code == 200, executed.content
    assert executed.json()["created"] is True
    assert len(outside.calls("GrantAccountPrivilege")) == 1


def test_reconcile_of_a_change_goes_through_the_workflow_entry(outside, requester, approver):
    account_request = submit(requester, Kind.DELETE)
    approve(account_request, approver)
    AccountRequest.objects.filter(pk=account_request.pk).update(status=Status.NEEDS_RECONCILIATION)
    outside.simulator.store.remove_account(HEALTHY, NAME)

    workflow.reconcile_request(request_id=account_request.pk, origin=origin_of(approver))

    account_request.refresh_from_db()
    assert account_request.status == Status.CREATED
