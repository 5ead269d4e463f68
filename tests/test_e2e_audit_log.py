"""The audit log at a laptop's screen (1366x768) in Debian's Chromium, in English and in
Chinese (issue 21, bug 4): about fifteen events fit, each on one line with its time
whole; Comment and Source IP are on screen without scrolling sideways; a toggle kept in
the URL hides sign-ins and says so."""

from __future__ import annotations

import io
import re

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import expect

from tests.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LABELS = {
    "en": {"comment": "Comment", "ip": "Source IP", "hide": "Hide sign-ins"},
    "zh-hans": {"comment": "备注", "ip": "来源 IP", "hide": "隐藏登录"},
}

MEASURE = """
() => {
  const rows = [...document.querySelectorAll("#audit-results tbody tr")];
  const wrap = document.querySelector("#audit-results .table-wrap");
  const times = [...document.querySelectorAll("#audit-results tbody time")];
  // Two lines of text would take twice the line height, padding aside.
  const oneLine = (el) => el.getBoundingClientRect().height
    < 2 * parseFloat(getComputedStyle(el).lineHeight);
  return {
    onScreen: rows.filter((row) => row.getBoundingClientRect().bottom <= innerHeight).length,
    scrollsSideways: wrap.scrollWidth > wrap.clientWidth + 1
      || document.documentElement.scrollWidth > innerWidth + 1,
    rowsOnOneLine: rows.every(oneLine),
    timesWhole: times.every((t) => t.getBoundingClientRect().right
      <= t.closest("td").getBoundingClientRect().right + 1 && oneLine(t)),
  };
}
"""


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_audit_log_fits_a_laptop_screen_and_hides_sign_ins(
    live_server, page, auditor, language
):
    call_command("seed_audit", events=120, stdout=io.StringIO())
    base = live_server.url
    page.set_viewport_size({"width": 1366, "height": 768})
    sign_in(page, base, auditor.username)
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base}]
    )
    page.goto(f"{base}/audit/")
    expect(page.locator("html")).to_have_attribute("lang", language)

    found = page.evaluate(MEASURE)
    assert found["onScreen"] >= 15, found
    assert not found["scrollsSideways"], found
    assert found["rowsOnOneLine"] and found["timesWhole"], found
    labels = LABELS[language]
    for name in (labels["comment"], labels["ip"]):
        header = page.get_by_role("columnheader", name=name, exact=True)
        box = header.bounding_box()
        assert box and box["x"] + box["width"] <= 1366, name

    signed_in_out = {page_action_label(language, action) for action in ("login", "logout")}
    assert signed_in_out & set(actions_shown(page))
    page.get_by_label(labels["hide"]).check()
    expect(page).to_have_url(re.compile(r"hide_sign_ins=on"))
    expect(page.locator("[data-sign-ins-hidden]")).to_be_visible()
    assert actions_shown(page) and not signed_in_out & set(actions_shown(page))

    # Kept in the URL: a reload (or a shared link) shows the same, the box still ticked.
    page.reload()
    expect(page.get_by_label(labels["hide"])).to_be_checked()
    expect(page.locator("[data-sign-ins-hidden]")).to_be_visible()


def actions_shown(page) -> list[str]:
    """The Action column's text, row by row."""
    return page.locator("#audit-results tbody tr td:nth-child(4)").all_inner_texts()


def page_action_label(language: str, action: str) -> str:
    return {
        ("en", "login"): "Signed in",
        ("en", "logout"): "Signed out",
        ("zh-hans", "login"): "登录",
        ("zh-hans", "logout"): "退出登录",
    }[(language, action)]
