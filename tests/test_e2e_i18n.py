"""The language switcher in Debian's Chromium: the request and execute forms, in Chinese
and back, with the browser's live checks and the server's answers."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts_app.models import AccountRequest
from tests.builders import approved_request
from tests.conftest import choose_instance, sign_in
from tests.demo_instances import HEALTHY

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def switch_language(page, code: str, button: str) -> None:
    """Choose a language in the navigation's switcher, as a user does."""
    page.locator("#language-select").select_option(code)
    page.get_by_role("button", name=button, exact=True).click()
    expect(page.locator("html")).to_have_attribute("lang", code)


def submit_bypassing_the_browser(page, form_id: str, button: str) -> None:
    """Submit what the browser's own checks would refuse, to hear the server's answer."""
    page.locator(f"#{form_id}").evaluate("form => { form.noValidate = true; }")
    page.get_by_role("button", name=button, exact=True).click()


def test_the_request_form_speaks_chinese_and_english(live_server, page, estate, requester):
    base = live_server.url
    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/new/")
    expect(page.get_by_role("heading", name="Request an account")).to_be_visible()

    switch_language(page, "zh-hans", "Switch")
    expect(page).to_have_url(f"{base}/requests/new/")
    expect(page.get_by_role("heading", name="申请账号")).to_be_visible()
    expect(page.get_by_role("link", name="新建申请")).to_be_visible()
    expect(page.get_by_label("账号名")).to_be_visible()
    expect(page.get_by_label("申请理由")).to_be_visible()
    expect(page.get_by_role("button", name="提交审批")).to_be_visible()
    expect(page.locator("#id_account_privilege option[value=RoleReadOnly]")).to_have_text("只读")

    # rules.js checks as the name is typed, in the page's language.
    choose_instance(page, HEALTHY, "实例")
    name = page.get_by_label("账号名")
    name.fill("Bad Name")
    live = page.locator("#id_account_name-rule-msg")
    expect(live).to_contain_text("必须以小写字母（a–z）开头。")
    expect(live).to_contain_text("只能包含小写字母（a–z）、数字（0–9）和下划线（_）")
    name.fill("select")
    expect(live).to_have_text("“select”是保留字，请换一个名称。")

    # The server says the same, in Chinese, when the browser's checks are bypassed.
    name.fill("Select")
    page.get_by_label("申请理由").fill("报表需要只读权限。")
    submit_bypassing_the_browser(page, "request-form", "提交审批")
    server = page.locator("#id_account_name_errors")
    expect(server).to_contain_text("必须以小写字母（a–z）开头。")
    expect(server).to_contain_text("只能包含小写字母（a–z）、数字（0–9）和下划线（_）")
    assert not AccountRequest.objects.exists()

    # And back to English, remembered from page to page.
    switch_language(page, "en", "切换")
    expect(page.get_by_role("heading", name="Request an account")).to_be_visible()
    page.get_by_label("Account name").fill("Bad Name")
    expect(page.locator("#id_account_name-rule-msg")).to_contain_text(
        "Must start with a lowercase letter (a–z)."
    )
    page.get_by_role("link", name="Instances").click()
    expect(page.get_by_role("heading", name="Instances")).to_be_visible()


def test_the_execute_form_speaks_chinese_and_english(
    live_server, page, estate, requester, approver
):
    account_request = approved_request(requester, approver)
    base = live_server.url
    sign_in(page, base, "alice")
    page.goto(f"{base}/requests/{account_request.pk}/execute/")
    expect(page.get_by_role("button", name="Generate a strong password")).to_have_text("Generate")

    switch_language(page, "zh-hans", "Switch")
    expect(page.get_by_role("heading", name=f"在 {HEALTHY} 上创建 app_reader")).to_be_visible()
    checklist = page.locator("#id_account_password-checklist")
    expect(checklist.locator("li")).to_have_text(
        [
            "8–32 个字符 (未满足)",
            "仅包含字母、数字和 ! @ # $ % ^ & * ( ) _ + - = (未满足)",
            "大写字母（A–Z） (未满足)",
            "小写字母（a–z） (未满足)",
            "数字（0–9） (未满足)",
            "特殊字符（! @ # $ % ^ & * ( ) _ + - =） (未满足)",
            "至少包含以上 4 类中的 3 类 (未满足)",
        ]
    )
    expect(page.get_by_role("button", name="生成强密码")).to_have_text("生成")
    expect(page.get_by_role("button", name="显示密码")).to_have_text("显示")

    password = page.get_by_label("密码", exact=True)
    password.fill("abc")
    expect(checklist.locator("[data-check=type-lower]")).to_have_text("小写字母（a–z） (已满足)")
    expect(page.locator("#id_account_password-rule-msg")).to_contain_text(
        "长度至少为 8 个字符，当前为 3 个。"
    )
    password.fill("Str0ng-Passw0rd")
    page.get_by_label("确认密码").fill("Str0ng-Passw0rx")
    expect(page.locator("#id_account_password_confirm-rule-msg")).to_have_text(
        "两次输入的密码不一致。"
    )
    page.get_by_role("button", name="生成强密码").click()
    expect(page.locator("#id_account_password-generate-status")).to_have_text(
        "已生成新密码，并填入了两个密码框。"
    )
    expect(page.locator("#id_account_password_confirm-rule-msg")).to_have_text("")

    # The server's own mismatch message, when the browser's check is bypassed.
    password.fill("Str0ng-Passw0rd")
    page.get_by_label("确认密码").fill("Str0ng-Passw0rx")
    submit_bypassing_the_browser(page, "execute-form", "创建账号")
    expect(page.locator("#id_account_password_confirm_errors")).to_have_text(
        "两次输入的密码不一致。"
    )
    assert not estate.calls("CreateAccount")

    switch_language(page, "en", "切换")
    expect(page.get_by_role("button", name="Generate a strong password")).to_have_text("Generate")
    expect(checklist.locator("li").first).to_have_text("8 to 32 characters (not yet)")
    page.get_by_label("Password", exact=True).fill("Str0ng-Passw0rd")
    page.get_by_label("Confirm password").fill("different-1A")
    expect(page.locator("#id_account_password_confirm-rule-msg")).to_have_text(
        "The passwords do not match."
    )
