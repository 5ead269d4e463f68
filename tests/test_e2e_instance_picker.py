"""The instance picker in Debian's Chromium: the keyboard, what a screen reader is told,
and a request submitted with the instance chosen there."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts_app.models import AccountRequest
from tests.conftest import sign_in
from tests.demo_instances import OLD_ENGINE, REPL_OK

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_form(page, base):
    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/new/")
    return page.get_by_role("combobox", name="Instance", exact=True)


def test_the_picker_is_used_with_the_keyboard_alone(live_server, page, estate, requester):
    box = open_form(page, live_server.url)
    listbox = page.locator(f"#{box.get_attribute('aria-controls')}")
    expect(listbox).to_have_attribute("role", "listbox")
    box.focus()
    box.press_sequentially("bp1")
    expect(box).to_have_attribute("aria-expanded", "true")
    options = listbox.get_by_role("option")
    expect(options.first).to_be_visible()

    box.press("ArrowDown")
    first = options.nth(0)
    expect(box).to_have_attribute("aria-activedescendant", first.get_attribute("id"))
    expect(first).to_have_attribute("aria-selected", "true")
    box.press("ArrowDown")
    expect(box).to_have_attribute("aria-activedescendant", options.nth(1).get_attribute("id"))
    box.press("ArrowUp")
    expect(box).to_have_attribute("aria-activedescendant", first.get_attribute("id"))

    box.press("Escape")
    expect(box).to_have_attribute("aria-expanded", "false")
    expect(listbox).to_be_hidden()
    expect(box).to_have_value("bp1")

    # Narrowed to one instance, then chosen with Enter: the form is not submitted.
    box.fill(REPL_OK)
    expect(options).to_have_count(1)
    expect(options.first).to_have_attribute("data-value", REPL_OK)
    box.press("ArrowDown")
    box.press("Enter")
    expect(box).to_have_value(REPL_OK)
    expect(box).to_have_attribute("aria-expanded", "false")
    assert not AccountRequest.objects.exists()
    # rules.js reads the chosen instance's facts: RoleRepl is allowed on this 4.0 standard one.
    expect(page.locator("#id_account_privilege option[value=RoleRepl]")).to_be_enabled()


def test_an_instance_that_cannot_take_an_account_is_not_chosen(
    live_server, page, estate, requester
):
    box = open_form(page, live_server.url)
    box.fill(OLD_ENGINE)
    option = page.locator(f"#{box.get_attribute('aria-controls')}").get_by_role("option")
    expect(option).to_have_count(1)
    expect(option).to_have_attribute("aria-disabled", "true")
    expect(option).to_contain_text(OLD_ENGINE)
    expect(option).to_contain_text("2.8")
    box.press("ArrowDown")
    box.press("Enter")
    expect(box).to_have_attribute("aria-expanded", "true")
    assert not box.get_attribute("data-architecture")


def test_a_request_is_submitted_with_the_instance_picked(live_server, page, estate, requester):
    box = open_form(page, live_server.url)
    box.fill("leg4s")
    page.locator(f'[role="option"][data-value="{REPL_OK}"]').click()
    expect(box).to_have_value(REPL_OK)
    # The pre-flight follows the choice.
    expect(page.locator("#preflight")).to_contain_text("Redis 4.0 supports accounts.")
    page.get_by_label("Account name").fill("app_reader")
    page.get_by_label("Justification").fill("Nightly reports need read access.")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_text("submitted for approval")).to_be_visible()
    assert AccountRequest.objects.get().instance.instance_id == REPL_OK
