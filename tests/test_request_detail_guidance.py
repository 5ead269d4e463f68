"""What a request's page and the request form tell the user to do next: who still has to
approve, the approval policy before submitting, the rejection's reason, the next steps of
a blocked approved request, and no contradictory advice on an unknown outcome."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts_app import policy, roles
from accounts_app.models import AccountRequest, ApprovalPolicy, RoleGrant
from tests.builders import approve, approved_request, request_row, submitted_request
from tests.conftest import cast_member
from tests.demo_instances import HEALTHY

pytestmark = pytest.mark.django_db
Status = AccountRequest.Status


@pytest.fixture
def approver_requester(make_user):
    return cast_member(make_user, "approver_requester")


def page(user, name: str, *args, **params) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(reverse(name, args=args), params)
    assert response.status_code == 200
    return response.content.decode()


def approvals_cell(html: str) -> str:
    start = html.index("<dd data-approvals>") + len("<dd data-approvals>")
    return html[start : html.index("</dd>", start)]


def test_the_page_says_who_approved_and_who_may_still_decide(
    estate, requester, approver, second_approver, approver_requester, settings
):
    ApprovalPolicy.objects.update_or_create(
        account_privilege="RoleReadOnly", defaults={"approvals_required": 2}
    )
    account_request = submitted_request(requester)
    approve(account_request, approver)
    cell = approvals_cell(page(requester, "request_detail", account_request.pk))
    assert cell == (
        f"1 / 2 · approved by {approver.username} · waiting for any of: "
        f"{second_approver.username}, {approver_requester.username}"
    )


def test_who_may_decide_agrees_with_may_decide_for_every_user(
    estate, requester, approver, second_approver, approver_requester, auditor, make_user, settings
):
    ApprovalPolicy.objects.update_or_create(
        account_privilege="RoleReadOnly", defaults={"approvals_required": 2}
    )
    account_request = submitted_request(requester)
    approve(account_request, approver)
    settings.APPROVER_WAIT_HOURS = 24
    RoleGrant.objects.all().delete()
    # Made an approver by the requester; and one made an approver just now.
    RoleGrant.objects.create(user=second_approver, granted_by=requester, what="group Approvers")
    newcomer = make_user("zoe", roles.APPROVERS)
    RoleGrant.objects.create(user=newcomer, what="group Approvers")
    account_request.refresh_from_db()
    everyone = [requester, approver, second_approver, approver_requester, auditor, newcomer]
    listed = set(policy.approvers_who_may_decide(account_request))
    assert listed == {u for u in everyone if policy.may_decide(u, account_request)}
    assert listed == {approver_requester}


def test_the_form_shows_the_approval_policy_before_submitting(requester, settings):
    settings.MIN_APPROVALS = 1
    ApprovalPolicy.objects.update_or_create(
        account_privilege="RoleRepl", defaults={"approvals_required": 3}
    )
    html = page(requester, "request_new")
    assert "Replication needs 3 approvals" in html
    assert "Read-only needs 1 approval<" in html


def test_a_rejected_request_shows_its_reason_in_a_callout_and_no_empty_card(
    estate, requester, approver
):
    account_request = submitted_request(requester)
    Client().force_login(approver)
    from accounts_app.services import workflow
    from tests.builders import origin_of

    workflow.request_reject(
        request_id=account_request.pk,
        approver=approver,
        comment="Use the shared reader.",
        origin=origin_of(approver),
    )
    html = page(requester, "request_detail", account_request.pk)
    assert (
        f'<div class="callout callout-bad" data-rejection>Rejected by {approver.username}: '
        "Use the shared reader.</div>" in html
    )
    assert html.count('<section class="card">') == 2  # what was requested, the history


def test_an_approved_request_whose_name_was_taken_offers_next_steps(estate, requester, approver):
    account_request = approved_request(requester, approver)
    estate.add_account(HEALTHY, "app_reader")
    for name in ("request_detail", "request_execute"):
        html = page(requester, name, account_request.pk)
        assert "data-next-steps" in html
        assert f"?copy={account_request.pk}" in html
        assert reverse("request_cancel", args=[account_request.pk]) in html
        create = html[html.index("Create the account</button>") - 200 :]
        assert "disabled" in create[:200]


def test_an_unknown_outcome_gives_one_piece_of_advice(estate, requester, approver):
    instance = approved_request(requester, approver, name="app_other").instance
    unknown = request_row(
        requester,
        instance,
        "app_unknown",
        status=Status.NEEDS_RECONCILIATION,
        error_code="Timeout",
    )
    for name in ("request_detail", "request_execute_result"):
        html = page(requester, name, unknown.pk)
        assert "Nothing will be retried blindly" in html
        assert "Try again in a few minutes" not in html


def test_the_decision_form_is_offered_only_to_an_approver_no_grant_holds_back(
    estate, requester, approver, second_approver, approver_requester, make_user, settings
):
    """The page reads the grants with the request (one query): the same answer as
    policy.may_decide, for a grant by the requester, a recent grant and none."""
    account_request = submitted_request(requester)
    settings.APPROVER_WAIT_HOURS = 24
    RoleGrant.objects.all().delete()
    RoleGrant.objects.create(user=second_approver, granted_by=requester, what="group Approvers")
    newcomer = make_user("zoe", roles.APPROVERS)
    RoleGrant.objects.create(user=newcomer, what="group Approvers")
    offered = {
        user
        for user in (approver, second_approver, approver_requester, newcomer)
        if 'id="decision-form"' in page(user, "request_detail", account_request.pk)
    }
    assert offered == {approver, approver_requester}
    assert offered == {
        user
        for user in (approver, second_approver, approver_requester, newcomer)
        if policy.may_decide(user, account_request)
    }
