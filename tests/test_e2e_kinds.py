"""The kinds of change other than a password reset (test_e2e_lifecycle.py), in Debian's
Chromium against the simulator: each requested, approved by another user, executed, and
the account at the simulator checked after; adopting starts from the drift page. And the
request form, which shows only the fields of the chosen kind, with or without JavaScript."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts_app.audit import Origin
from accounts_app.models import AccountRequest, AuditEvent, Instance, KnownAccount
from accounts_app.services import drift, lifecycle
from tests.builders import approve, origin_of
from tests.conftest import choose_instance, sign_in
from tests.demo_instances import HEALTHY

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

Kind = AccountRequest.Kind
NAME = "legacy_etl"


def on_simulator(estate, name=NAME):
    return next((a for a in estate.accounts(HEALTHY) if a["AccountName"] == name), None)


def privilege_of(account) -> str:
    """As DescribeAccounts lists it."""
    return account["DatabasePrivileges"]["DatabasePrivilege"][0]["AccountPrivilege"]


def approve_then_execute(page, base, account_request, *, approver="bob", requester="alice"):
    label = account_request.get_kind_display()
    sign_in(page, base, approver)
    page.goto(f"{base}/requests/{account_request.pk}/")
    expect(page.locator("#request-kind")).to_have_text(label)
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text(f"You approved request #{account_request.pk}")).to_be_visible()

    sign_in(page, base, requester)
    page.goto(f"{base}/requests/{account_request.pk}/")
    page.get_by_role("link", name=label).click()
    page.get_by_role("button", name=label).click()
    expect(page.get_by_role("heading", name="Done")).to_be_visible()


# Each kind: the fields it fills, and what the simulator shows after.
CHANGES = {
    Kind.DELETE: ({}, lambda account: account is None),
    Kind.PRIVILEGE: (
        {"#id_account_privilege": "RoleReadWrite"},
        lambda account: privilege_of(account) == "RoleReadWrite",
    ),
    Kind.DESCRIPTION: (
        {"#id_account_description": "nightly-etl"},
        lambda account: account["AccountDescription"] == "nightly-etl",
    ),
}
DONE = {
    Kind.DELETE: AuditEvent.Action.ACCOUNT_DELETED,
    Kind.PRIVILEGE: AuditEvent.Action.PRIVILEGE_GRANTED,
    Kind.DESCRIPTION: AuditEvent.Action.DESCRIPTION_CHANGED,
}


@pytest.mark.parametrize("kind", list(CHANGES))
def test_a_change_requested_approved_by_another_and_executed_in_a_real_browser(
    live_server, page, estate, requester, approver, kind
):
    base = live_server.url
    estate.add_account(HEALTHY, NAME, privilege="RoleReadOnly", description="by-hand")
    fields, made = CHANGES[kind]

    sign_in(page, base, "alice")
    page.get_by_role("link", name="New request").click()
    page.get_by_label("What to do").select_option(kind)
    choose_instance(page, HEALTHY)
    page.get_by_label("Account name").fill(NAME)
    for selector, value in fields.items():
        field = page.locator(selector)
        expect(field).to_be_visible()
        if selector == "#id_account_privilege":
            field.select_option(value)
        else:
            field.fill(value)
    page.get_by_label("Justification").fill("Tidying the ETL account.")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_text("submitted for approval")).to_be_visible()
    account_request = AccountRequest.objects.get()
    assert account_request.kind == kind

    approve_then_execute(page, base, account_request)

    assert made(on_simulator(estate))
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.CREATED
    assert account_request.events.filter(action=DONE[kind]).count() == 1


def test_adopting_an_account_found_by_the_sweep_from_the_drift_page(
    live_server, page, estate, approver, second_approver
):
    base = live_server.url
    estate.add_account(HEALTHY, "console_made", privilege="RoleReadOnly")
    drift.sweep_accounts(origin=Origin.system("test"), pause=0)

    sign_in(page, base, "bob")
    page.goto(f"{base}/drift/")
    row = page.locator('tr[data-account="console_made"]')
    row.get_by_role("link", name="Adopt").click()
    expect(page.get_by_label("What to do")).to_have_value("adopt")
    expect(page.get_by_label("Account name")).to_have_value("console_made")
    expect(page.locator("#id_account_privilege")).to_be_hidden()
    page.get_by_label("Justification").fill("The reporting team owns it.")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_text("submitted for approval")).to_be_visible()
    adoption = AccountRequest.objects.get(kind=Kind.ADOPT)

    approve_then_execute(page, base, adoption, approver="erin", requester="bob")

    known = KnownAccount.objects.get(instance__instance_id=HEALTHY, account_name="console_made")
    assert (known.created_by_id, known.drift) == (adoption.pk, "")
    assert privilege_of(on_simulator(estate, "console_made")) == "RoleReadOnly"
    page.goto(f"{base}/drift/")
    expect(page.locator('tr[data-account="console_made"]')).to_have_count(0)


# Which fields each kind shows: privilege for create and privilege, description for
# create and description, the account type for create; the rest always.
SHOWN = {
    "create": {"Privilege", "Description", "Account type"},
    "delete": set(),
    "privilege": {"Privilege"},
    "reset_password": set(),
    "description": {"Description"},
    "adopt": set(),
}


FIELDS = {
    "Privilege": "#id_account_privilege",
    "Description": "#id_account_description",
    "Account type": "#id_account_type",
}


def shown_fields(page) -> set[str]:
    return {label for label, field in FIELDS.items() if page.locator(field).is_visible()}


@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "without-js"])
def test_the_request_form_shows_only_the_fields_of_the_chosen_kind(
    live_server, browser, estate, requester, javascript
):
    context = browser.new_context(java_script_enabled=javascript)
    page = context.new_page()
    base = live_server.url
    estate.add_account(HEALTHY, NAME, privilege="RoleReadOnly")
    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/new/")

    for kind, expected in SHOWN.items():
        page.get_by_label("What to do").select_option(kind)
        assert shown_fields(page) == expected, kind
        for label in ("Instance", "Account name", "Justification"):
            expect(page.get_by_label(label, exact=True)).to_be_visible()
    expect(page.get_by_text("you type the new one (or generate it)")).to_be_hidden()
    page.get_by_label("What to do").select_option("reset_password")
    expect(page.get_by_text("you type the new one (or generate it)")).to_be_visible()

    # Hidden fields still submit their defaults: a deletion goes through either way.
    page.get_by_label("What to do").select_option("delete")
    page.get_by_label("Instance", exact=True).fill(HEALTHY)
    page.get_by_label("Account name").fill(NAME)
    page.get_by_label("Justification").fill("Nobody uses it.")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_text("submitted for approval")).to_be_visible()
    assert AccountRequest.objects.get().kind == Kind.DELETE
    context.close()


def test_the_request_page_says_in_progress_until_the_change_settles_then_the_final_state(
    live_server, page, estate, requester, approver
):
    base = live_server.url
    estate.add_account(HEALTHY, NAME, privilege="RoleReadOnly", description="by-hand")
    estate.set_activation_delay(60)
    change = lifecycle.request_submit(
        kind=Kind.DESCRIPTION,
        requester=requester,
        instance=Instance.objects.get(instance_id=HEALTHY),
        account_name=NAME,
        account_privilege="RoleReadOnly",
        account_description="nightly-etl",
        account_type="Normal",
        justification="Say what it is for.",
        origin=origin_of(requester),
    )
    approve(change, approver)
    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/{change.pk}/")
    page.get_by_role("link", name=change.get_kind_display()).click()
    page.get_by_role("button", name=change.get_kind_display()).click()
    expect(page.get_by_role("heading", name="Done")).to_be_visible()
    page.goto(f"{base}/requests/{change.pk}/")
    expect(page.locator("[data-settling]")).to_be_visible()

    estate.clock.advance(61)
    drift.sweep_accounts(origin=Origin.system("test"), pause=0)

    # No reload: the page asks again by itself (every 5 s) and shows the final state.
    expect(page.locator("[data-settled]")).to_contain_text("nightly-etl", timeout=15_000)
    expect(page.locator("[data-settling]")).to_have_count(0)
