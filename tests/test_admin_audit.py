"""The admin inside the chain (issue 23, finding 1): a superuser lowered the RoleRepl
policy, made a second account an approver, and that account approved the superuser's
own request, with only the approval in the audit log. Now every such change is an
audit event, mailed to the auditors; no policy goes below MIN_APPROVALS; and whoever
the requester made an approver (or made at all), or anyone made one too recently,
cannot decide that requester's requests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts_app import policy, roles
from accounts_app.audit.messages import event_text
from accounts_app.models import AccountRequest, ApprovalPolicy, AuditEvent, RoleGrant
from accounts_app.services import workflow
from tests.builders import approve, origin_of, request_row, submitted_request
from tests.conftest import DEMO_TEST_PASSWORD, cast_member
from tests.demo_instances import HEALTHY

pytestmark = pytest.mark.django_db

Action = AuditEvent.Action


@pytest.fixture
def root(make_user):
    user = cast_member(make_user, "superuser_requester")
    user.email = "root@example.com"
    user.save()
    return user


@pytest.fixture
def auditor_with_mail(auditor):
    auditor.email = "carol@example.com"
    auditor.save()
    return auditor


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def user_change_form(user, **changes) -> dict:
    """What Django's admin posts to change a user."""
    data = {
        "username": user.username,
        "email": user.email,
        "is_active": "on",
        "date_joined_0": timezone.now().date().isoformat(),
        "date_joined_1": "00:00:00",
        "groups": [group.pk for group in user.groups.all()],
    }
    if user.is_staff:
        data["is_staff"] = "on"
    if user.is_superuser:
        data["is_superuser"] = "on"
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_the_attack_through_the_admin_is_in_the_chain_and_the_accomplice_cannot_approve(
    settings, root, auditor_with_mail, django_capture_on_commit_callbacks, mailoutbox
):
    client = admin_client(root)
    repl = ApprovalPolicy.objects.get(account_privilege="RoleRepl")
    with django_capture_on_commit_callbacks(execute=True):
        # 1. The superuser lowers the RoleRepl policy to 1.
        response = client.post(
            reverse("admin:accounts_app_approvalpolicy_change", args=[repl.pk]),
            # As the admin's form posts it: the lifetime rules as they were.
            {"account_privilege": "RoleRepl", "approvals_required": "1", "allow_no_expiry": "on"},
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        # 2. creates a second account, 3. puts it in Approvers.
        response = client.post(
            reverse("admin:auth_user_add"),
            {
                "username": "accomplice",
                "password1": DEMO_TEST_PASSWORD + "x",
                "password2": DEMO_TEST_PASSWORD + "x",
                "usable_password": "true",
            },
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        accomplice = get_user_model().objects.get(username="accomplice")
        approvers = Group.objects.get(name=roles.APPROVERS)
        response = client.post(
            reverse("admin:auth_user_change", args=[accomplice.pk]),
            user_change_form(accomplice, groups=[approvers.pk]),
        )
        assert response.status_code == 302, response.content.decode()[:2000]

    (policy_event,) = events(Action.POLICY_CHANGED)
    assert policy_event.actor == root
    assert "RoleRepl" in event_text(policy_event) and "2 -> 1" in event_text(policy_event)
    created = [e for e in events(Action.USER_CHANGED) if "accomplice created" in event_text(e)]
    assert created and created[0].actor == root
    (membership,) = [e for e in events(Action.ROLE_CHANGED) if "accomplice" in event_text(e)]
    assert "+Approvers" in event_text(membership) and membership.actor == root
    # Never a password hash, in any event.
    accomplice.refresh_from_db()
    for event in AuditEvent.objects.all():
        assert accomplice.password not in event_text(event) + event.message_params
        assert accomplice.password.split("$")[-1] not in event_text(event) + event.message_params
    # 4. The auditors were told, by mail, of each change.
    to_auditors = [m for m in mailoutbox if "carol@example.com" in m.to]
    assert len(to_auditors) >= 3
    assert any("2 -> 1" in m.body for m in to_auditors)

    # 5. The accomplice cannot approve the superuser's request.
    account_request = request_row(root, _instance(), "repl_app", privilege="RoleRepl")
    assert not policy.may_decide_on(accomplice, account_request)
    with pytest.raises(workflow.TransitionError):
        workflow.request_approve(
            request_id=account_request.pk,
            approver=accomplice,
            comment="",
            origin=origin_of(accomplice),
        )
    page = admin_client(accomplice).post(reverse("request_approve", args=[account_request.pk]))
    assert page.status_code == 403
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.PENDING
    assert not policy.decidable_requests(accomplice, AccountRequest.objects.all()).exists()


def _instance():
    from tests.builders import instance_row

    return instance_row(HEALTHY)


def test_no_policy_goes_below_min_approvals_not_even_through_the_admin(settings, root):
    settings.MIN_APPROVALS = 2
    repl = ApprovalPolicy.objects.get(account_privilege="RoleRepl")
    response = admin_client(root).post(
        reverse("admin:accounts_app_approvalpolicy_change", args=[repl.pk]),
        {"account_privilege": "RoleRepl", "approvals_required": "1"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "MIN_APPROVALS" in response.content.decode()
    repl.refresh_from_db()
    assert repl.approvals_required == 2
    read_only = ApprovalPolicy.objects.get(account_privilege="RoleReadOnly")
    read_only.approvals_required = 1
    with pytest.raises(ValidationError):
        read_only.save()
    # A row written before the floor was raised does not lower it.
    ApprovalPolicy.objects.filter(pk=read_only.pk).update(approvals_required=1)
    assert workflow.approvals_required_for("RoleReadOnly") == 2
    assert not events(Action.POLICY_CHANGED)


def test_staff_and_superuser_flags_are_audited_before_and_after(root, outsider):
    admin_client(root).post(
        reverse("admin:auth_user_change", args=[outsider.pk]),
        user_change_form(outsider, is_staff="on", is_superuser="on"),
    )
    (event,) = [e for e in events(Action.USER_CHANGED) if "mallory:" in event_text(e)]
    assert "is_staff: False -> True" in event_text(event)
    assert "is_superuser: False -> True" in event_text(event)
    assert event.actor == root
    assert RoleGrant.objects.filter(user=outsider, granted_by=root, what="is_superuser").exists()


def test_group_permissions_and_a_command_are_audited(root, requester):
    requesters = Group.objects.get(name=roles.REQUESTERS)
    from django.contrib.auth.models import Permission

    approve_perm = Permission.objects.get(codename="approve_request")
    requesters.permissions.add(approve_perm)
    (event,) = events(Action.GROUP_CHANGED)
    assert "+accounts_app.approve_request" in event_text(event)
    assert "Requesters" in event_text(event)
    assert RoleGrant.objects.filter(user=requester, what__contains="approve_request").exists()

    call_command("createsuperuser", "--noinput", username="night", email="n@example.com")
    assert any("night created" in event_text(e) for e in events(Action.USER_CHANGED))


def test_an_approver_made_too_recently_waits(settings, estate, requester, approver):
    settings.APPROVER_WAIT_HOURS = 24
    account_request = submitted_request(requester)
    assert not policy.may_decide_on(approver, account_request)
    with pytest.raises(workflow.TransitionError, match="24"):
        approve(account_request, approver)
    RoleGrant.objects.filter(user=approver).update(granted_at=timezone.now() - timedelta(hours=25))
    assert policy.may_decide_on(approver, account_request)
    approve(account_request, approver)
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.APPROVED
