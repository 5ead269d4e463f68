"""The password-free warning in Debian's Chromium: shown on the one instance whose
VpcAuthMode is ``Close`` (password-free access on), nowhere else, in English and Chinese."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD_FREE = "r-uf6flg7s7y2nf5k9pb"  # VpcAuthMode Close
PASSWORD_REQUIRED = "r-bp1ord5x0c9kq2m7wa"  # VpcAuthMode Open, the default

WARNING = {
    "en": "Password-free access from the VPC is on for this instance (VpcAuthMode Close)",
    "zh-hans": "该实例已开启专有网络（VPC）免密访问（VpcAuthMode Close）",
}
BADGE = {"en": "Password-free VPC access is on", "zh-hans": "已开启 VPC 免密访问"}
SWITCH = {"en": "Switch", "zh-hans": "切换"}


def switch_language(page, code: str, button: str) -> None:
    page.locator("#language-select").select_option(code)
    page.get_by_role("button", name=button, exact=True).click()
    expect(page.locator("html")).to_have_attribute("lang", code)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_only_the_close_instance_carries_the_password_free_warning(
    live_server, page, estate, requester, language
):
    base = live_server.url
    sign_in(page, base, "alice")
    page.goto(f"{base}/instances/")
    if language != "en":
        switch_language(page, language, SWITCH["en"])

    warned = page.locator("tr[data-instance]").filter(
        has=page.locator("[data-warning]", has_text=BADGE[language])
    )
    expect(warned).to_have_count(1)
    expect(warned).to_have_attribute("data-instance", PASSWORD_FREE)

    page.goto(f"{base}/instances/{PASSWORD_FREE}/")
    callout = page.locator('[data-warning="password-free"]')
    expect(callout).to_be_visible()
    expect(callout).to_contain_text(WARNING[language])

    page.goto(f"{base}/instances/{PASSWORD_REQUIRED}/")
    expect(page.locator("h1")).to_contain_text(PASSWORD_REQUIRED)
    expect(page.locator('[data-warning="password-free"]')).to_have_count(0)
    expect(page.get_by_text(WARNING[language])).to_have_count(0)
