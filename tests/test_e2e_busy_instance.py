"""A busy instance seen from Debian's Chromium: the execute page says nothing was created,
the approval stands, and "Try again" creates the account once the instance is free."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from accounts_app.models import AccountRequest, AuditEvent
from tests.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HEALTHY = "r-bp1ord5x0c9kq2m7wa"
PASSWORD = "Str0ng-Passw0rd"


def approved_request(requester, approver) -> AccountRequest:
    as_requester, as_approver = Client(), Client()
    as_requester.force_login(requester)
    as_approver.force_login(approver)
    as_requester.post(
        reverse("request_new"),
        {
            "instance_id": HEALTHY,
            "account_name": "app_reader",
            "account_privilege": "RoleReadOnly",
            "account_type": "Normal",
            "justification": "Nightly reports.",
        },
    )
    account_request = AccountRequest.objects.get()
    as_approver.post(reverse("request_approve", args=[account_request.pk]), {"comment": "ok"})
    return account_request


def test_a_busy_instance_keeps_the_approval_and_try_again_creates_the_account(
    live_server, page, estate, requester, approver
):
    account_request = approved_request(requester, approver)
    estate.add_fault("error", action="CreateAccount", code="OperationDeniedDBStatus")
    base = live_server.url
    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/{account_request.pk}/execute/")

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Create the account").click()

    result = page.locator("#execute-result")
    expect(result).to_have_attribute("data-outcome", "instance-busy")
    expect(result.get_by_role("heading")).to_have_text("The instance is busy: nothing was created")
    expect(result).to_contain_text("Your request is still approved")
    expect(result).to_contain_text("OperationDeniedDBStatus")
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.APPROVED
    assert account_request.events.filter(
        action=AuditEvent.Action.EXECUTION_FAILED, error_code="OperationDeniedDBStatus"
    ).exists()

    page.get_by_role("link", name="Try again").click()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Create the account").click()

    expect(page.get_by_role("heading", name="The account was created")).to_be_visible()
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.CREATED
    assert "app_reader" in estate.account_names(HEALTHY)
