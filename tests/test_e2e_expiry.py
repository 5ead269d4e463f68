"""A time-boxed account in Debian's Chromium against the simulator: the form's browser check
refuses an expiry longer than the policy allows, a quick choice fills one it allows, the
approver sees the expiry, and an extension goes through approval and moves it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts_app.models import AccountRequest, ApprovalPolicy, AuditEvent
from tests.conftest import choose_instance, sign_in
from tests.demo_instances import HEALTHY

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

Kind = AccountRequest.Kind


def test_an_account_with_an_expiry_then_its_extension(
    live_server, page, estate, requester, approver
):
    ApprovalPolicy.objects.update_or_create(
        kind=Kind.CREATE,
        account_privilege="RoleReadOnly",
        defaults={"max_lifetime_days": 30, "allow_no_expiry": False},
    )
    base = live_server.url

    sign_in(page, base, "alice")
    page.get_by_role("link", name="New request").click()
    choose_instance(page, HEALTHY)
    page.get_by_label("Account name").fill("contractor")
    page.get_by_label("Privilege").select_option("RoleReadOnly")
    page.get_by_label("Justification").fill("A contractor for the migration.")
    days = page.get_by_label("Expires in (days)")
    days.fill("60")
    expect(page.locator("#id_expires_in_days-rule-msg")).to_have_text(
        "The approval policy allows at most 30 days for this privilege."
    )
    page.get_by_role("button", name="Submit for approval").click()
    assert not AccountRequest.objects.exists()  # the browser kept the form
    page.get_by_role("button", name="7 days").click()
    expect(days).to_have_value("7")
    expect(page.locator("#id_expires_in_days-rule-msg")).to_have_text("")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_text("submitted for approval")).to_be_visible()
    made = AccountRequest.objects.get()
    assert timedelta(days=6, hours=23) < made.expires_at - timezone.now() <= timedelta(days=7)

    sign_in(page, base, "bob")
    page.goto(f"{base}/requests/{made.pk}/")
    shown = timezone.localtime(made.expires_at).strftime("%Y-%m-%d")
    expect(page.locator("[data-expires]")).to_contain_text(shown)
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text(f"You approved request #{made.pk}")).to_be_visible()

    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/{made.pk}/")
    page.get_by_role("link", name="Create the account").click()
    page.get_by_role("button", name=re.compile("Generate", re.I)).click()
    page.get_by_role("button", name="Create the account").click()
    expect(page.get_by_role("heading", name="The account was created")).to_be_visible()

    page.goto(f"{base}/requests/{made.pk}/")
    page.get_by_role("link", name="Extend", exact=True).click()
    expect(page.get_by_label("What to do")).to_have_value("extend")
    page.get_by_label("Expires in (days)").fill("20")
    page.get_by_label("Justification").fill("The migration runs two weeks longer.")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_text("submitted for approval")).to_be_visible()
    extension = AccountRequest.objects.get(kind=Kind.EXTEND)
    assert extension.about_id == made.pk

    sign_in(page, base, "bob")
    page.goto(f"{base}/requests/{extension.pk}/")
    expect(page.locator("#request-kind")).to_have_text("Extend an account's expiry")
    expect(page.locator("[data-expires]")).to_contain_text(
        timezone.localtime(extension.expires_at).strftime("%Y-%m-%d")
    )
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text(f"You approved request #{extension.pk}")).to_be_visible()

    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/{extension.pk}/")
    page.get_by_role("link", name="Extend an account's expiry").click()
    page.get_by_role("button", name="Extend an account's expiry").click()
    expect(page.get_by_role("heading", name="Done")).to_be_visible()
    made.refresh_from_db()
    assert made.expires_at == extension.expires_at
    assert AuditEvent.objects.filter(
        request=extension, action=AuditEvent.Action.EXPIRY_EXTENDED
    ).exists()
    assert estate.calls("DeleteAccount") == []
