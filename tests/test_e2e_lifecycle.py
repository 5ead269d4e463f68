"""A password reset of an account made outside the dashboard, in Debian's Chromium
against the simulator: request it, approve it, type the new password at execution."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts_app.models import AccountRequest, AuditEvent
from tests.conftest import choose_instance, sign_in
from tests.demo_instances import HEALTHY

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_password_reset_in_a_real_browser(live_server, page, estate, requester, approver):
    base = live_server.url
    estate.add_account(HEALTHY, "legacy_etl", privilege="RoleReadOnly")

    sign_in(page, base, "alice")
    page.get_by_role("link", name="New request").click()
    page.get_by_label("What to do").select_option("reset_password")
    choose_instance(page, HEALTHY)
    page.get_by_label("Account name").fill("legacy_etl")
    page.get_by_label("Justification").fill("The old password leaked in a ticket.")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_text("submitted for approval")).to_be_visible()
    account_request = AccountRequest.objects.get()
    assert account_request.kind == AccountRequest.Kind.RESET_PASSWORD

    sign_in(page, base, "bob")
    page.goto(f"{base}/requests/{account_request.pk}/")
    expect(page.locator("#request-kind")).to_have_text("Reset an account's password")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text(f"You approved request #{account_request.pk}")).to_be_visible()

    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/{account_request.pk}/")
    page.get_by_role("link", name="Reset an account's password").click()
    page.get_by_role("button", name=re.compile("Generate", re.I)).click()
    password = page.locator("#id_account_password").input_value()
    assert password
    page.get_by_role("button", name="Reset an account's password").click()
    expect(page.get_by_role("heading", name="Done")).to_be_visible()
    assert password not in page.content()
    [call] = estate.calls("ResetAccountPassword")
    assert "AccountPassword" in call["body_keys"]
    assert AuditEvent.objects.filter(
        request=account_request, action=AuditEvent.Action.PASSWORD_RESET
    ).exists()
