"""static/js/rules.js in Debian's Chromium: the same table, the same verdicts and messages.

Each test opens the request and execute forms' fields (tests/fixtures/browser.py builds
them with rules.widget_attrs and the json_script spec, as the templates do) and runs
the shared table tests/rule_cases.json in one page.evaluate batch.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.utils import translation

from accounts_app import rules
from tests.fixtures.browser import (
    PAGE_INSTANCES,
    RULES_JS,
    load_rule_cases,
    open_rules_page,
    rules_page_html,
)

pytestmark = pytest.mark.browser

TABLE = load_rule_cases()
LANGUAGES = ["en", "zh-hans"]
TEXT_FIELDS = {
    "AccountName": "#id_account_name",
    "AccountDescription": "#id_account_description",
    "AccountPassword": "#id_account_password",
}


def server_view(violations) -> list[dict[str, str]]:
    return [{"key": v.key, "message": v.message} for v in violations]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_browser_gives_every_case_the_servers_keys_and_messages(page, language):
    open_rules_page(page, language)
    cases = [{"param": c["param"], "value": c["value"]} for c in TABLE["cases"]]

    browser = page.evaluate(
        "cases => cases.map(c => KVStoreRules.validate(c.param, c.value))", cases
    )

    with translation.override(language):
        server = [server_view(rules.validate(c["param"], c["value"])) for c in TABLE["cases"]]
    for case, got, expected in zip(TABLE["cases"], browser, server, strict=True):
        assert got == expected, case
        assert [v["key"] for v in got] == case["keys"], case


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_browser_agrees_on_instances_privileges_and_confirmation(page, language):
    open_rules_page(page, language)

    browser = page.evaluate(
        """t => ({
          instance: t.instance_cases.map(c => KVStoreRules.instanceBlockers(
            {status: c.status, engine: c.engine, accountCount: c.account_count})),
          privilege: t.privilege_cases.map(c => KVStoreRules.privilegeAllowed(
            c.privilege, {architecture: c.architecture, engine: c.engine})),
          reason: t.privilege_cases.map(c => KVStoreRules.privilegeReason(
            c.privilege, {architecture: c.architecture, engine: c.engine})),
          confirm: t.confirm_cases.map(c => KVStoreRules.confirmViolations(
            c.password, c.confirmation)),
        })""",
        TABLE,
    )

    with translation.override(language):
        assert browser["instance"] == [
            server_view(
                rules.instance_blockers(
                    instance_status=c["status"],
                    engine_version=c["engine"],
                    account_count=c["account_count"],
                )
            )
            for c in TABLE["instance_cases"]
        ]
        assert browser["privilege"] == [c["allowed"] for c in TABLE["privilege_cases"]]
        for case, reason in zip(TABLE["privilege_cases"], browser["reason"], strict=True):
            if case["privilege"] == "RoleRepl" and not case["allowed"]:
                assert reason == rules.privilege_reason(
                    "RoleRepl",
                    architecture_type=case["architecture"],
                    engine_version=case["engine"],
                )
        assert browser["confirm"] == [
            server_view(rules.confirm_violations(c["password"], c["confirmation"]))
            for c in TABLE["confirm_cases"]
        ]


def test_the_password_checklist_matches_the_server_on_every_password_case(page):
    open_rules_page(page)
    values = [c["value"] for c in TABLE["cases"] if c["param"] == "AccountPassword"]

    browser = page.evaluate(
        "values => values.map(v => KVStoreRules.checklist('AccountPassword', v))", values
    )

    for value, got in zip(values, browser, strict=True):
        expected = [
            {"id": s.id, "label": s.label, "met": s.met}
            for s in rules.checklist("AccountPassword", value)
        ]
        assert got == expected, value


def test_the_javascript_classes_hold_the_same_characters_as_the_python_ones(page):
    # Every class of the spec, over every BMP code point and the astral planes' edges:
    # the regex sources rules.js compiles must mean what rules.py means.
    open_rules_page(page)
    classes = {}
    for name, param_rules in rules.RULES.items():
        for constraint in param_rules.constraints:
            if isinstance(constraint, rules.StartsWith | rules.AllowedChars):
                classes[f"{name}.{constraint.key}"] = constraint.chars
            if isinstance(constraint, rules.CharTypes):
                classes.update({f"{name}.{t.name}": t.chars for t in constraint.types})
    probes = [*range(0x0000, 0xD800), *range(0xE000, 0x10000), 0x10000, 0x20000, 0x10FFFF]

    browser = page.evaluate(
        """([sources, probes]) => Object.fromEntries(Object.entries(sources).map(([name, src]) => {
          const re = new RegExp("^" + src + "$", "v");
          return [name, probes.filter(cp => re.test(String.fromCodePoint(cp)))];
        }))""",
        [{name: chars.js_source() for name, chars in classes.items()}, probes],
    )

    for name, chars in classes.items():
        assert browser[name] == [cp for cp in probes if chr(cp) in chars], name


def test_every_pattern_compiles_under_the_v_flag_without_a_console_warning(page):
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    open_rules_page(page)
    # The control: a pattern that breaks under `v` must be noticed by this very check.
    page.evaluate(
        """() => {
          const bad = document.createElement("input");
          bad.pattern = "[a-z(]";
          bad.value = "x";
          document.body.append(bad);
          bad.checkValidity();
        }"""
    )
    page.wait_for_timeout(50)
    assert any("[a-z(]" in text for text in console)
    page.evaluate("() => document.body.lastElementChild.remove()")
    console.clear()

    for selector in TEXT_FIELDS.values():
        page.fill(selector, "x")
        page.eval_on_selector(selector, "el => el.checkValidity()")
    page.wait_for_timeout(50)

    assert not [text for text in console if "pattern" in text.lower()]
    patterns = page.eval_on_selector_all("input[pattern]", "els => els.map(e => e.pattern)")
    assert sorted(patterns) == sorted(
        rules.RULES[param].pattern for param in TEXT_FIELDS if rules.RULES[param].pattern
    )


def test_the_pattern_attribute_agrees_with_the_server_on_every_case(page):
    # What the browser's own patternMismatch says (without rules.js) must be a subset
    # of the server's opinion: a value matches exactly when no start/charset rule breaks.
    open_rules_page(page)
    cases = [
        {"selector": TEXT_FIELDS[c["param"]], "value": c["value"]}
        for c in TABLE["cases"]
        if c["param"] in TEXT_FIELDS and c["value"]
    ]

    mismatches = page.evaluate(
        """cases => cases.map(c => {
          const input = document.querySelector(c.selector);
          const probe = document.createElement("input");
          probe.pattern = input.pattern;
          probe.value = c.value;
          return probe.validity.patternMismatch;
        })""",
        cases,
    )

    for case, mismatch in zip(cases, mismatches, strict=True):
        value = case["value"]
        if "\n" in value or "\r" in value:
            continue  # an <input> strips line breaks from its value
        param = next(p for p, s in TEXT_FIELDS.items() if s == case["selector"])
        keys = {v.key for v in rules.validate(param, value)}
        assert mismatch is bool(keys & {"start", "charset"}), (param, value)


@pytest.mark.parametrize("param", TEXT_FIELDS)
def test_typing_an_invalid_value_shows_the_servers_message_and_blocks_the_form(page, param):
    open_rules_page(page)
    selector = TEXT_FIELDS[param]
    invalid = {"AccountName": "Admin", "AccountDescription": "http://x", "AccountPassword": "abc"}
    valid = {
        "AccountName": "app_reader",
        "AccountDescription": "测试账号",
        "AccountPassword": "Aa1!Aa1!",
    }

    page.locator(selector).press_sequentially(invalid[param])

    expected = [v.message for v in rules.validate(param, invalid[param])]
    message_box = page.locator(f"{selector}-rule-msg")
    assert message_box.locator(".rule-message").all_text_contents() == expected
    assert page.eval_on_selector(selector, "el => el.checkValidity()") is False
    assert page.eval_on_selector(selector, "el => el.validationMessage") == expected[0]
    assert page.locator(f"{selector}:invalid").count() == 1
    described_by = page.get_attribute(selector, "aria-describedby").split()
    assert f"{selector[1:]}-rule-msg" in described_by
    assert page.eval_on_selector("#request-form", "f => f.checkValidity()") is False

    page.fill(selector, "")
    page.locator(selector).press_sequentially(valid[param])
    page.locator(selector).blur()

    assert page.eval_on_selector(selector, "el => el.checkValidity()") is True
    assert message_box.inner_text() == ""


def test_leaving_an_empty_required_field_says_it_is_required(page):
    open_rules_page(page)

    page.focus("#id_account_name")
    page.locator("#id_account_name").blur()

    assert page.locator("#id_account_name-rule-msg").inner_text() == "Enter an account name."


def test_the_browser_shows_chinese_messages_when_the_page_is_chinese(page):
    open_rules_page(page, "zh-hans")

    page.locator("#id_account_name").press_sequentially("1a")

    with translation.override("zh-hans"):
        expected = rules.validate("AccountName", "1a")[0].message
    assert page.locator("#id_account_name-rule-msg").inner_text() == expected


def test_generate_fills_both_fields_with_a_password_the_server_accepts_by_keyboard(page):
    open_rules_page(page)
    generate = page.get_by_role("button", name="Generate a strong password")

    generate.focus()
    page.keyboard.press("Enter")
    first = page.input_value("#id_account_password")
    page.keyboard.press("Space")
    second = page.input_value("#id_account_password")

    assert rules.validate("AccountPassword", first) == []
    assert rules.validate("AccountPassword", second) == []
    assert first != second
    assert page.input_value("#id_account_password_confirm") == second
    assert page.eval_on_selector("#id_account_password", "el => el.checkValidity()") is True
    assert page.eval_on_selector("#id_account_password_confirm", "el => el.checkValidity()")
    checks = page.locator(".rule-checklist .rule-check")
    assert checks.count() == len(rules.RULES["AccountPassword"].checklist)
    assert page.locator(".rule-checklist .rule-check.is-met").count() == checks.count()


def test_generated_passwords_are_valid_and_use_every_character(page):
    open_rules_page(page)

    passwords = page.evaluate(
        "() => Array.from({length: 500}, () => KVStoreRules.generatePassword())"
    )

    assert [p for p in passwords if rules.validate("AccountPassword", p)] == []
    assert len(set(passwords)) == len(passwords)
    assert set("".join(passwords)) == set("".join(rules.generation_alphabet().values()))


def test_the_checklist_ticks_as_the_password_is_typed(page):
    open_rules_page(page)
    password = page.locator("#id_account_password")

    password.press_sequentially("abc1")
    met = page.locator(".rule-check.is-met").evaluate_all("els => els.map(e => e.dataset.check)")

    expected = [s.id for s in rules.checklist("AccountPassword", "abc1") if s.met]
    assert met == expected == ["charset", "type-lower", "type-digit"]
    password.press_sequentially("!xyz")
    unmet = page.locator(".rule-check:not(.is-met)").evaluate_all(
        "els => els.map(e => e.dataset.check)"
    )
    assert unmet == ["type-upper"]  # three of four types are enough: that one may stay open
    state = page.locator(".rule-check[data-check=type-upper] .rule-check-state").inner_text()
    assert state.strip() == "(not yet)"


def test_show_and_hide_toggle_both_password_fields(page):
    open_rules_page(page)
    toggle = page.get_by_role("button", name="Show the password")

    toggle.focus()
    page.keyboard.press("Enter")

    assert page.get_attribute("#id_account_password", "type") == "text"
    assert page.get_attribute("#id_account_password_confirm", "type") == "text"
    hide = page.get_by_role("button", name="Hide the password")
    assert hide.inner_text() == "Hide"
    hide.click()
    assert page.get_attribute("#id_account_password", "type") == "password"
    assert page.get_attribute("#id_account_password_confirm", "type") == "password"


def test_a_confirmation_that_differs_is_invalid_with_its_message(page):
    open_rules_page(page)

    page.fill("#id_account_password", "Aa1!Aa1!")
    page.locator("#id_account_password_confirm").press_sequentially("Aa1!Aa1")

    assert page.locator("#id_account_password_confirm-rule-msg").inner_text() == (
        rules.passwords_do_not_match_message()
    )
    assert (
        page.eval_on_selector("#id_account_password_confirm", "el => el.checkValidity()") is False
    )
    page.locator("#id_account_password_confirm").press_sequentially("!")
    assert page.eval_on_selector("#id_account_password_confirm", "el => el.checkValidity()")
    assert page.locator("#id_account_password_confirm-rule-msg").inner_text() == ""


def test_replication_follows_the_selected_instance_with_the_reason_shown(page):
    open_rules_page(page)
    repl = page.locator("#id_account_privilege option[value=RoleRepl]")
    note = page.locator("#id_account_privilege-rule-note")

    assert repl.is_disabled()  # no instance chosen yet
    page.select_option("#id_instance_id", "r-standard40")
    assert repl.is_enabled()
    assert note.inner_text() == ""
    page.select_option("#id_account_privilege", "RoleRepl")

    page.select_option("#id_instance_id", "r-cluster50")

    assert repl.is_disabled()
    arch, engine, _status, _count = PAGE_INSTANCES["r-cluster50"]
    reason = rules.privilege_reason("RoleRepl", architecture_type=arch, engine_version=engine)
    assert note.inner_text() == reason
    assert page.input_value("#id_account_privilege") == rules.DEFAULT_PRIVILEGE
    assert "id_account_privilege-rule-note" in page.get_attribute(
        "#id_account_privilege", "aria-describedby"
    )
    page.select_option("#id_instance_id", "r-standard50")
    assert repl.is_disabled()


def test_the_replication_note_follows_the_chosen_privilege(page):
    open_rules_page(page)
    note = page.locator("#id_account_privilege-rule-note")

    # Read-only chosen: nothing to say about Replication, whatever the instance.
    for instance_id in ("r-cluster50", "r-standard40", "r-standard50"):
        page.select_option("#id_instance_id", instance_id)
        assert note.inner_text() == "", instance_id
    page.select_option("#id_instance_id", "r-standard40")
    page.select_option("#id_account_privilege", "RoleRepl")
    page.select_option("#id_instance_id", "r-cluster50")
    assert note.inner_text() != ""  # why Replication was taken back
    page.select_option("#id_account_privilege", "RoleReadWrite")
    assert note.inner_text() == ""


def test_replication_follows_an_instance_select_found_by_its_options_alone(page):
    # A form may leave data-rule off the instance select: its options still describe it.
    page.set_content(rules_page_html().replace('data-rule="InstanceId"', ""))
    page.add_script_tag(path=str(RULES_JS))
    repl = page.locator("#id_account_privilege option[value=RoleRepl]")

    page.select_option("#id_instance_id", "r-standard40")
    assert repl.is_enabled()
    page.select_option("#id_instance_id", "r-cluster50")
    assert repl.is_disabled()


@pytest.mark.parametrize("instance_id", ["r-changing", "r-old", "r-full"])
def test_an_instance_that_cannot_take_an_account_is_invalid_with_the_reason(page, instance_id):
    open_rules_page(page)

    page.select_option("#id_instance_id", instance_id)

    _arch, engine, status, count = PAGE_INSTANCES[instance_id]
    expected = rules.instance_blockers(
        instance_status=status, engine_version=engine, account_count=count
    )
    assert page.locator("#id_instance_id-rule-msg").inner_text() == expected[0].message
    assert page.eval_on_selector("#id_instance_id", "el => el.checkValidity()") is False
    page.select_option("#id_instance_id", "r-standard40")
    assert page.eval_on_selector("#id_instance_id", "el => el.checkValidity()") is True


# --- Safety: nothing leaves the page, and the strict CSP is enough ----------------------


def test_rules_js_has_no_network_call_and_no_eval():
    source = RULES_JS.read_text(encoding="utf-8")
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("//"))

    for forbidden in (
        "fetch(",
        "XMLHttpRequest",
        "sendBeacon",
        "WebSocket",
        "EventSource",
        "eval(",
        "Function(",
        "innerHTML",
        'setTimeout("',
        "import(",
    ):
        assert forbidden not in code, forbidden


def test_under_a_strict_csp_nothing_is_requested_and_nothing_is_refused(page):
    # Served from an origin of its own, with the site's kind of policy: scripts only from
    # 'self' (no inline, no eval), Trusted Types required. Every request is recorded.
    origin = "http://kvstore.test"
    html = rules_page_html().replace(
        "</body>", '<script src="/static/js/rules.js"></script></body>'
    )
    csp = (
        "default-src 'none'; script-src 'self'; style-src 'self'; form-action 'self'; "
        "require-trusted-types-for 'script'"
    )
    requests: list[str] = []
    problems: list[str] = []

    def serve(route):
        url = route.request.url
        requests.append(url)
        if url == f"{origin}/form":
            route.fulfill(
                body=html, content_type="text/html", headers={"Content-Security-Policy": csp}
            )
        elif url == f"{origin}/static/js/rules.js":
            route.fulfill(path=str(RULES_JS), content_type="text/javascript")
        else:
            route.fulfill(status=404)

    page.route(re.compile(r".*"), serve)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{origin}/form")

    page.locator("#id_account_password").press_sequentially("Secret-Passw0rd")
    page.get_by_role("button", name="Generate a strong password").click()
    page.get_by_role("button", name="Show the password").click()
    page.locator("#id_account_name").press_sequentially("Admin")
    page.select_option("#id_instance_id", "r-cluster50")
    page.wait_for_timeout(100)

    assert problems == []
    assert requests == [f"{origin}/form", f"{origin}/static/js/rules.js"]
    assert page.locator("#id_account_name-rule-msg .rule-message").count() == 3
    assert rules.validate("AccountPassword", page.input_value("#id_account_password")) == []


def test_the_test_page_loads_the_real_stylesheet_and_script():
    assert Path(RULES_JS).is_file()
    assert 'data-rule="AccountPassword"' in rules_page_html()
