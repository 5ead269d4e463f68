"""The mail about a new request goes to the approvers who may decide it, and only them:
not the requester (an Approver may request too), not an approver the requester made one,
not an approver whose role is too new (accounts_app/policy.py, may_decide_on)."""

from __future__ import annotations

from datetime import timedelta

from django.core import mail
from django.utils import timezone

from accounts_app.models import RoleGrant
from tests.builders import submitted_request


def with_email(user, address: str):
    user.email = address
    user.save()
    return user


def mailed_on_submit(requester, django_capture_on_commit_callbacks) -> list[str]:
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        submitted_request(requester)
    return sorted(address for message in mail.outbox for address in message.to)


def test_every_approver_who_may_decide_is_mailed(
    estate, requester, approver, second_approver, auditor, django_capture_on_commit_callbacks
):
    with_email(approver, "bob@example.com")
    with_email(second_approver, "erin@example.com")
    with_email(auditor, "carol@example.com")

    assert mailed_on_submit(requester, django_capture_on_commit_callbacks) == [
        "bob@example.com",
        "erin@example.com",
    ]


def test_an_approver_who_requests_is_not_mailed_about_their_own_request(
    estate, approver, second_approver, django_capture_on_commit_callbacks
):
    with_email(approver, "bob@example.com")
    with_email(second_approver, "erin@example.com")

    assert mailed_on_submit(approver, django_capture_on_commit_callbacks) == ["erin@example.com"]


def test_an_approver_the_requester_made_one_is_not_mailed(
    estate, requester, approver, second_approver, django_capture_on_commit_callbacks
):
    with_email(approver, "bob@example.com")
    with_email(second_approver, "erin@example.com")
    RoleGrant.objects.create(user=second_approver, granted_by=requester, what="group Approvers")

    assert mailed_on_submit(requester, django_capture_on_commit_callbacks) == ["bob@example.com"]


def test_an_approver_whose_role_is_too_new_is_not_mailed(
    estate, settings, requester, approver, second_approver, django_capture_on_commit_callbacks
):
    settings.APPROVER_WAIT_HOURS = 24
    with_email(approver, "bob@example.com")
    with_email(second_approver, "erin@example.com")
    # Both got their account and role just now (the signals record the grants): bob's
    # are made older than the wait, erin's stay new.
    RoleGrant.objects.filter(user=approver).update(granted_at=timezone.now() - timedelta(days=3))
    assert RoleGrant.objects.filter(user=second_approver).exists()

    assert mailed_on_submit(requester, django_capture_on_commit_callbacks) == ["bob@example.com"]
