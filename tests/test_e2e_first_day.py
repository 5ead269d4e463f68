"""A DBA's first day in Debian's Chromium (issue 21): creating an account answers with a
page that a refresh shows again without posting the password twice; copy buttons; the
request list from the dashboard; a request opened from an instance; cancel asks first."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts_app.models import AccountRequest
from tests.builders import approved_request, submitted_request
from tests.conftest import sign_in
from tests.demo_instances import HEALTHY, PASSWORD_FREE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def clipboard(page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def test_creating_an_account_then_refreshing_never_posts_again(
    live_server, page, estate, requester, approver
):
    base = live_server.url
    account_request = approved_request(requester, approver)
    AccountRequest.objects.filter(pk=account_request.pk).update(
        instance=account_request.instance.__class__.objects.get(instance_id=PASSWORD_FREE)
    )
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/{account_request.pk}/execute/")

    # The generated password is copied from the page itself, before anything is sent.
    page.get_by_role("button", name="Generate a strong password").click()
    password = page.locator("#id_account_password").input_value()
    page.get_by_role("button", name="Copy the password").click()
    expect(page.locator("#id_account_password-generate-status")).to_have_text(
        "The password was copied to the clipboard."
    )
    assert clipboard(page) == password

    page.get_by_role("button", name="Create the account").click()
    heading = page.get_by_role("heading", name="The account was created")
    expect(heading).to_be_visible()
    assert page.url == f"{base}/requests/{account_request.pk}/execute/result/"
    page.reload()
    expect(heading).to_be_visible()
    assert "nothing to create" not in page.content()
    assert password not in page.content()
    assert len(estate.calls("CreateAccount")) == 1

    # Copy buttons: the endpoint, the redis-cli line, and Redis 6's AUTH line with a
    # placeholder where the password goes.
    endpoint = page.locator("#copy-endpoint").inner_text()
    page.get_by_role("button", name="Copy the endpoint").click()
    expect(page.get_by_role("button", name="Copy the endpoint")).to_have_text("Copied")
    assert clipboard(page) == endpoint
    page.get_by_role("button", name="Copy the redis-cli line").click()
    assert clipboard(page).startswith("redis-cli -h ")
    page.get_by_role("button", name="Copy the Redis 6 AUTH line").click()
    assert clipboard(page) == "AUTH app_reader <password>"


def test_an_approver_finds_every_waiting_request_from_the_dashboard(
    live_server, page, estate, requester, approver
):
    base = live_server.url
    reader = submitted_request(requester)
    writer = submitted_request(requester, name="app_writer", privilege="RoleReadWrite")
    sign_in(page, base, "bob")
    page.locator('a[href="/requests/?tab=waiting"]').click()
    expect(page).to_have_url(re.compile(r"/requests/\?tab=waiting$"))
    rows = page.locator("#request-rows tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator(f'tr[data-request="{reader.pk}"] [data-approvals]')).to_have_text("0 / 1")

    # The rows are in the page's HTML; typing filters as it goes once its scripts have
    # run: a user types into a page that has loaded (typed earlier, the input was lost).
    page.wait_for_load_state("load")
    page.get_by_label("Search").fill("writer")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-request", str(writer.pk))
    assert "q=writer" in page.url  # the filtered list can be shared


def test_a_request_opened_from_an_instance_has_it_chosen(live_server, page, estate, requester):
    base = live_server.url
    sign_in(page, base, "alice")
    page.goto(f"{base}/instances/{HEALTHY}/")
    page.get_by_role("link", name="Request an account on this instance").click()
    expect(page.get_by_role("combobox", name="Instance", exact=True)).to_have_value(HEALTHY)


def test_a_request_opened_from_the_instance_list_has_it_chosen(
    live_server, page, estate, requester, auditor
):
    base = live_server.url
    sign_in(page, base, "alice")
    page.goto(f"{base}/instances/")
    page.get_by_role("link", name=f"Request an account on {HEALTHY}").click()
    expect(page).to_have_url(re.compile(rf"/requests/new/\?instance_id={HEALTHY}$"))
    expect(page.get_by_role("combobox", name="Instance", exact=True)).to_have_value(HEALTHY)

    # Not offered to whoever may not request.
    sign_in(page, base, auditor.username)
    page.goto(f"{base}/instances/")
    expect(page.locator(f'tr[data-instance="{HEALTHY}"]')).to_be_visible()
    expect(page.locator("[data-request-here]")).to_have_count(0)


def test_typing_a_name_with_the_live_preflight_logs_no_console_error(
    live_server, page, estate, requester
):
    base = live_server.url
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Each pre-flight waits on a slow DescribeAccounts: the next keystroke comes while
    # the last one is still running.
    estate.add_fault("slow", action="DescribeAccounts", delay=1.0, count=0)
    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/new/?instance_id={HEALTHY}")
    name = page.locator("#id_account_name")
    for character in "app_rd":
        name.press_sequentially(character)
        page.wait_for_timeout(600)
    expect(page.locator('#preflight [data-check="account_name"]')).to_have_count(1, timeout=15_000)
    page.wait_for_load_state("networkidle")
    assert errors == []


def test_cancelling_asks_first(live_server, page, estate, requester):
    base = live_server.url
    account_request = submitted_request(requester)
    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/{account_request.pk}/")

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Cancel request").click()
    expect(page.get_by_role("button", name="Cancel request")).to_be_visible()
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.PENDING

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel request").click()
    expect(page.get_by_text(f"Request #{account_request.pk} cancelled.")).to_be_visible()
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.CANCELLED
