"""End to end in Debian's Chromium: signing in through the real OpenID provider's pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.fixtures.oidc_provider import IDP_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in_at_the_idp(page, base: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/login/")
    page.get_by_role("button", name="Sign in with Demo IdP").click()
    expect(page.get_by_role("heading", name=re.compile("Demo identity provider"))).to_be_visible()
    page.get_by_label(re.compile("Username")).fill(username)
    page.get_by_label(re.compile("Password")).fill(IDP_PASSWORD)
    page.get_by_role("button", name=re.compile("Sign in")).click()


@pytest.mark.parametrize(
    ("username", "role", "link"),
    [
        ("alice", "Requester", "New request"),
        ("bob", "Approver", "Approvals"),
        ("dave", "Auditor", "Audit log"),
    ],
)
def test_each_role_signs_in_through_the_providers_pages(
    live_server, page, sso, make_user, username, role, link
):
    make_user("someone")
    sign_in_at_the_idp(page, live_server.url, username)
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator(".whoami")).to_contain_text(f"{username} ({role})")
    expect(page.get_by_role("link", name=link)).to_be_visible()


def test_staff_from_the_idp_reach_the_admin(live_server, page, sso, make_user):
    make_user("someone")
    sign_in_at_the_idp(page, live_server.url, "erin")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.goto(f"{live_server.url}/admin/")
    expect(page.get_by_role("heading", name=re.compile("Site administration"))).to_be_visible()


def test_a_user_with_no_mapped_group_sees_only_the_page_that_says_so(
    live_server, page, sso, make_user
):
    make_user("someone")
    sign_in_at_the_idp(page, live_server.url, "mallory")
    expect(page).to_have_url(f"{live_server.url}/no-role/")
    expect(page.get_by_role("heading", name="No role yet")).to_be_visible()
    page.goto(f"{live_server.url}/instances/")
    expect(page).to_have_url(f"{live_server.url}/no-role/")


def test_a_wrong_password_at_the_idp_signs_nobody_in(live_server, page, sso):
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("button", name="Sign in with Demo IdP").click()
    page.get_by_label(re.compile("Username")).fill("alice")
    page.get_by_label(re.compile("Password")).fill("not-the-password")
    page.get_by_role("button", name=re.compile("Sign in")).click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")


def test_sign_out_ends_the_session_at_the_idp_too(live_server, page, sso, make_user):
    make_user("someone")
    sign_in_at_the_idp(page, live_server.url, "alice")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    # The provider asks whether to end its own session too.
    page.get_by_role("button", name=re.compile("Yes", re.IGNORECASE)).click()
    expect(page).to_have_url(f"{live_server.url}/login/")
    # The IdP asks for the password again: its session is gone.
    page.get_by_role("button", name="Sign in with Demo IdP").click()
    expect(page.get_by_label(re.compile("Password"))).to_be_visible()
