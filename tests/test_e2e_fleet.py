"""A fleet request in Debian's Chromium against the simulator: 50 instances, 3 blocked,
approved once, created with live progress, a transient error retried and an unknown
outcome reconciled."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts_app.models import AccountRequest, AuditEvent
from tests.conftest import empty_instance, sign_in
from tests.demo_instances import CHANGING, FULL, OLD_ENGINE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


PASSWORD = "Fl33t-Br0wser"


def test_fifty_instances_three_blocked_in_a_real_browser(
    live_server, page, context, estate, requester, approver, settings
):
    settings.LIVE_CALLS_PER_MINUTE = 200  # every instance checked live (a budget of its own)
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
    seen = []  # each poll's answer, as the watcher's tab received it during the run
    watcher.on("response", lambda answer: seen.append(poll_status(answer)))
    watcher.goto(f"{base}/requests/{fleet.pk}/")
    page.goto(f"{base}/requests/{fleet.pk}/")
    page.get_by_role("link", name="Create the accounts").click()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Create the accounts").click()
    expect(page.get_by_role("heading", name="The run's outcome")).to_be_visible(timeout=60000)
    # The other tab polled while the run went on (its answers, not its DOM: the click
    # above returns once the POST's redirect is followed, when the run is over).
    running = [counts for status, counts in seen if status == "executing"]
    assert running and any(0 < done < 47 for done in running), seen
    assert page.url.endswith(f"/requests/{fleet.pk}/fleet/execute/result/")
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

    # A refresh of the result page asks for the page again: it posts nothing.
    posts = []
    page.on("request", lambda sent: posts.append(sent.url) if sent.method == "POST" else None)
    calls = len(estate.calls("CreateAccount"))
    page.reload()
    expect(page.get_by_role("heading", name="The run's outcome")).to_be_visible()
    assert posts == []
    assert len(estate.calls("CreateAccount")) == calls
    assert fleet.events.filter(action=AuditEvent.Action.EXECUTION_STARTED).count() == 1


def poll_status(answer) -> tuple[str, int]:
    """(the request's status, its done count) in an answer of the progress partial."""
    if "/fleet/progress/" not in answer.url or answer.status != 200:
        return ("", 0)
    body = answer.text()
    status = re.search(r'data-status="(\w+)"', body)
    done = re.search(r'id="fleet-counts">(\d+) done', body)
    return (status.group(1) if status else "", int(done.group(1)) if done else 0)


def approved_fleet(requester, approver, instances, *, kind="create", account_name="monitor"):
    from accounts_app.services import fleet as fleet_service
    from accounts_app.services import workflow
    from tests.builders import origin_of

    row = fleet_service.fleet_submit(
        requester=requester,
        instances=instances,
        account_name=account_name,
        account_privilege="RoleReadOnly",
        account_description="",
        account_type="Normal",
        justification="Monitoring everywhere.",
        origin=origin_of(requester),
        kind=kind,
    )
    workflow.request_approve(
        request_id=row.pk, approver=approver, comment="", origin=origin_of(approver)
    )
    return row


def test_a_generated_password_per_instance_is_shown_and_copied_before_the_run(
    live_server, page, estate, requester, approver
):
    base = live_server.url
    instances = [empty_instance(estate, f"r-each{n}x") for n in range(3)]
    fleet = approved_fleet(requester, approver, instances)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/{fleet.pk}/fleet/execute/")
    page.get_by_label("Generate a different password for each instance").check()

    shown = page.locator("#fleet-each code")
    expect(shown).to_have_count(3)
    passwords = shown.all_inner_texts()
    assert len(set(passwords)) == 3 and all(len(password) >= 8 for password in passwords)
    expect(page.locator("#id_account_password")).to_be_disabled()
    copy = page.locator(f'tr[data-instance="{instances[1].instance_id}"] button[data-copy]')
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == passwords[1]

    posts = []
    page.on(
        "request",
        lambda sent: posts.append(sent.post_data or "") if sent.method == "POST" else None,
    )
    page.get_by_role("button", name="Create the accounts").click()
    expect(page.get_by_role("heading", name="The run's outcome")).to_be_visible(timeout=30000)
    expect(page.locator("#fleet-counts")).to_contain_text("3 done, 0 failed, 0 unknown")
    # Each instance's own password went with the run's one POST, and none came back.
    assert len(posts) == 1 and all(password in _form_values(posts[0]) for password in passwords)
    for password in passwords:
        assert password not in page.content()
    page.reload()
    assert len(posts) == 1  # the refresh of the result page posts nothing
    assert len(estate.calls("CreateAccount")) == 3
    for instance in instances:
        assert estate.account_names(instance.instance_id).count("monitor") == 1
    assert AccountRequest.objects.get(pk=fleet.pk).status == AccountRequest.Status.CREATED


def _form_values(body: str) -> list[str]:
    from urllib.parse import parse_qsl

    return [value for _name, value in parse_qsl(body)]


def test_a_delete_on_several_instances_in_a_real_browser(
    live_server, page, estate, requester, approver
):
    base = live_server.url
    instances = [empty_instance(estate, f"r-drop{n}x") for n in range(4)]
    for instance in instances[:3]:
        estate.add_account(instance.instance_id, "old_app")
    ids = [instance.instance_id for instance in instances]

    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/new/fleet/")
    page.get_by_label("Name, ID or tag (key:value)").fill("r-drop")
    page.get_by_role("button", name="Find").click()
    expect(page.locator('input[name="instance_ids"]:checked')).to_have_count(4)
    page.get_by_label("What to do").select_option("delete")
    page.get_by_label("Account name").fill("old_app")
    page.get_by_label("Justification").fill("The old app is retired.")
    page.get_by_role("button", name="Check the instances").click()
    blocked = page.locator('tr[data-preflight="blocked"]')
    expect(blocked).to_have_count(1)
    expect(blocked).to_have_attribute("data-instance", ids[3])
    expect(blocked).to_contain_text("There is no account named old_app")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_text("submitted for approval")).to_be_visible()
    fleet = AccountRequest.objects.get()
    assert (fleet.kind, fleet.fleet_size) == ("delete", 3)

    sign_in(page, base, "bob")
    page.goto(f"{base}/requests/{fleet.pk}/")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text(f"You approved request #{fleet.pk}")).to_be_visible()

    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/{fleet.pk}/")
    page.get_by_role("link", name="Delete an account").click()
    expect(page.locator("#id_account_password")).to_have_count(0)
    page.get_by_role("button", name="Delete an account").click()
    expect(page.get_by_role("heading", name="The run's outcome")).to_be_visible(timeout=30000)
    expect(page.locator("#fleet-counts")).to_contain_text("3 done, 0 failed, 0 unknown")
    for instance_id in ids[:3]:
        assert "old_app" not in estate.account_names(instance_id)
    deleted = AuditEvent.objects.filter(request=fleet, action=AuditEvent.Action.ACCOUNT_DELETED)
    assert sorted(deleted.values_list("instance_id", flat=True)) == ids[:3]
