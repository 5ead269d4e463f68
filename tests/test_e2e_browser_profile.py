"""The password off the browser's disk (issue 23, finding 2), in Debian's Chromium with a
profile of the test's own: with "Show password" on, the form still submits the
password from type=password inputs, so Chromium keeps the POST body out of its
session-restore files; the page that answers holds the password nowhere; and after
the browser is closed, no file of the profile holds the canary in any form."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.builders import approved_request
from tests.conftest import sign_in
from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS
from tests.security_support import files_holding

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CANARY = "Pr0file-Canary&x+Q7"


def test_a_password_shown_while_typed_never_reaches_the_profile_directory(
    live_server, playwright, estate, requester, approver, tmp_path
):
    account_request = approved_request(requester, approver)
    profile = tmp_path / "chromium-profile"
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
    )
    try:
        page = context.pages[0] if context.pages else context.new_page()
        base = live_server.url
        sign_in(page, base, "alice")
        page.goto(f"{base}/requests/{account_request.pk}/execute/")
        page.locator("#id_account_password").fill(CANARY)
        page.locator("#id_account_password_confirm").fill(CANARY)
        page.locator('[data-password-toggle="id_account_password"]').click()
        expect(page.locator("#id_account_password")).to_have_attribute("type", "text")

        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.get_by_role("button", name="Create the account").click()
        response = answer.value
        assert "no-store" in response.headers.get("cache-control", "")
        # What was sent came from password inputs, whatever the toggle said.
        assert response.request.post_data and "account_password" in response.request.post_data
        expect(page.get_by_role("heading", name="The account was created")).to_be_visible()
        assert CANARY not in page.content()
        values = page.eval_on_selector_all("input", "els => els.map(e => e.value).join(' ')")
        assert CANARY not in values
        # More history on top, then a clean close: session files are written on the way.
        page.goto(f"{base}/")
        page.wait_for_load_state()
    finally:
        context.close()

    assert files_holding(profile, CANARY) == []


def test_the_search_finds_a_canary_typed_into_a_text_field(live_server, playwright, tmp_path):
    """Positive control: a value Chromium does keep (a text input's form state, in the
    session files) is found, so an empty result above means something."""
    profile = tmp_path / "chromium-profile"
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
    )
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill(CANARY)
        page.goto(f"{live_server.url}/healthz")
        page.go_back()
        page.wait_for_load_state()
    finally:
        context.close()
    assert files_holding(profile, CANARY)
