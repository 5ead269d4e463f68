"""A fleet request in Debian's Chromium against the simulator: 50 instances, 3 blocked,
approved once, created with live progress, a transient error retried and an unknown
outcome reconciled."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from playwright.sync_api import expect

from accounts_app.models import AccountRequest, AuditEvent
from tests.conftest import empty_instance, sign_in
from tests.demo_instances import CHANGING, FULL, OLD_ENGINE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def file_backed_database():
    """The run writes each instance's outcome while the page polls them. The test run's
    SQLite is in memory with a shared cache, whose table locks refuse a read during a
    write at once (no busy wait); a SQLite file in WAL mode, as `make run` uses, and
    PostgreSQL let readers and the writer pass each other."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: see file_backed_database (CI runs the suite there too)")


PASSWORD = "Fl33t-Br0wser"


def test_fifty_instances_three_blocked_in_a_real_browser(
    live_server, page, context, estate, requester, approver
):
    base = live_server.url
    healthy = [f"r-fleet{n:03d}" for n in range(47)]
    for instance_id in healthy:
        empty_instance(estate, instance_id)

    # The requester finds 47 instances by name, adds three more one by one, checks them.
    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/new/")
    page.get_by_role("link", name="The same account on a whole fleet").click()
    page.get_by_label("Name, ID or tag (key:value)").fill("r-fleet")
    page.get_by_role("button", name="Find").click()
    expect(page.locator('input[name="instance_ids"]:checked')).to_have_count(47)
    for instance_id in (OLD_ENGINE, CHANGING, FULL):
        box = page.get_by_role("combobox", name="Add an instance")
        box.fill(instance_id)
        expect(page.locator("#id_add_instance-listbox li").first).to_be_visible()
        box.press("Tab")  # leaves the suggestions (blocked ones cannot be chosen there)
        page.get_by_role("button", name="Add to the list").click()
    expect(page.locator('input[name="instance_ids"]:checked')).to_have_count(50)
    page.get_by_label("Account name").fill("order_ro")
    page.get_by_label("Privilege").select_option("RoleReadOnly")
    page.get_by_label("Justification").fill("The order service reads every shard.")
    page.get_by_role("button", name="Check the instances").click()
    blocked = page.locator('tr[data-preflight="blocked"]')
    expect(blocked).to_have_count(3)
    expect(blocked.locator('input[type="checkbox"]:checked')).to_have_count(0)
    expect(page.locator(f'tr[data-instance="{OLD_ENGINE}"]')).to_contain_text("Blocked")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_text("submitted for approval")).to_be_visible()
    fleet = AccountRequest.objects.get()
    assert fleet.fleet_size == 47
    expect(page.locator("tr[data-outcome=waiting]")).to_have_count(47)

    # One approval for the whole list.
    sign_in(page, base, "bob")
    page.goto(f"{base}/requests/{fleet.pk}/")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text(f"You approved request #{fleet.pk}")).to_be_visible()

    # The requester runs it; a second tab watches the progress.
    estate.add_fault("throttle", action="CreateAccount", instance_id=healthy[5])
    estate.add_fault(
        "commit_then_timeout", action="CreateAccount", instance_id=healthy[30], delay=3
    )
    sign_in(page, base, "alice")
    watcher = context.new_page()
    watcher.goto(f"{base}/requests/{fleet.pk}/")
    page.goto(f"{base}/requests/{fleet.pk}/")
    page.get_by_role("link", name="Create the accounts").click()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Create the accounts").click()
    expect(watcher.locator('#fleet-progress[data-status="executing"]')).to_be_visible(timeout=15000)
    expect(watcher.locator("tr[data-outcome=done]").first).to_be_visible()
    expect(page.get_by_role("heading", name="This run")).to_be_visible(timeout=60000)
    expect(page.locator("#fleet-counts")).to_contain_text("47 done, 0 failed, 0 unknown")
    expect(watcher.locator('#fleet-progress[data-status="created"]')).to_be_visible(timeout=5000)
    assert PASSWORD not in page.content()
    for instance_id in healthy:
        assert estate.account_names(instance_id).count("order_ro") == 1
    retried = [c for c in estate.calls("CreateAccount") if c["instance_id"] == healthy[5]]
    assert len(retried) == 2
    actions = AuditEvent.objects.filter(request=fleet, instance_id=healthy[30]).values_list(
        "action", flat=True
    )
    assert list(actions.order_by("seq")) == ["outcome_unknown", "reconciled"]


def test_a_generated_password_per_instance_is_shown_once_with_a_copy_button(
    live_server, page, estate, requester, approver
):
    from accounts_app.services import fleet as fleet_service
    from accounts_app.services import workflow
    from tests.builders import origin_of

    instances = [empty_instance(estate, f"r-each{n}x") for n in range(3)]
    fleet = fleet_service.fleet_submit(
        requester=requester,
        instances=instances,
        account_name="monitor",
        account_privilege="RoleReadOnly",
        account_description="",
        account_type="Normal",
        justification="Monitoring everywhere.",
        origin=origin_of(requester),
    )
    workflow.request_approve(
        request_id=fleet.pk, approver=approver, comment="", origin=origin_of(approver)
    )
    sign_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/requests/{fleet.pk}/fleet/execute/")
    page.get_by_label("Generate a different password for each instance").check()
    page.get_by_role("button", name="Create the accounts").click()
    shown = page.locator("#fleet-passwords code")
    expect(shown).to_have_count(3)
    passwords = shown.all_inner_texts()
    assert len(set(passwords)) == 3
    expect(page.get_by_role("button", name="Copy")).to_have_count(3)
    page.goto(f"{live_server.url}/requests/{fleet.pk}/fleet/execute/")
    for password in passwords:
        assert password not in page.content()
    assert re.search("created", AccountRequest.objects.get().status)
