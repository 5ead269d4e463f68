"""The whole flow in Debian's Chromium against the simulator: request, approve, create."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts_app.models import AccountRequest, AuditEvent
from tests.conftest import choose_instance, sign_in
from tests.demo_instances import HEALTHY

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_request_approve_and_create_in_a_real_browser(
    live_server, page, estate, requester, approver, auditor
):
    base = live_server.url

    # The requester asks for an account; the browser checks the name as it is typed.
    sign_in(page, base, "alice")
    page.get_by_role("link", name="New request").click()
    choose_instance(page, HEALTHY)
    name = page.get_by_label("Account name")
    name.fill("Bad Name")
    name.blur()
    assert not name.evaluate("el => el.checkValidity()")
    name.fill("app_reader")
    assert name.evaluate("el => el.checkValidity()")
    page.get_by_label("Privilege").select_option("RoleReadOnly")
    page.get_by_label("Justification").fill("Nightly reports need read access.")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_text("submitted for approval")).to_be_visible()
    account_request = AccountRequest.objects.get()
    expect(page.get_by_text("Waiting for approvers")).to_be_visible()

    # The approver approves it.
    sign_in(page, base, "bob")
    page.goto(f"{base}/requests/{account_request.pk}/")
    page.get_by_label("Comment").fill("Fine for reports.")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text(f"You approved request #{account_request.pk}")).to_be_visible()

    # The requester generates a password and creates the account.
    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/{account_request.pk}/")
    page.get_by_role("link", name="Create the account").click()
    page.get_by_role("button", name=re.compile("Generate", re.I)).click()
    password = page.locator("#id_account_password").input_value()
    assert password
    assert page.locator("#id_account_password_confirm").input_value() == password
    page.get_by_role("button", name="Create the account").click()
    expect(page.get_by_role("heading", name="The account was created")).to_be_visible()
    assert password not in page.content()
    assert "app_reader" in estate.account_names(HEALTHY)

    # The auditor sees the whole story on the request page.
    sign_in(page, base, "carol")
    page.goto(f"{base}/requests/{account_request.pk}/")
    expect(page.get_by_text("Account created")).to_be_visible()
    assert AuditEvent.objects.filter(request=account_request).count() == 4
