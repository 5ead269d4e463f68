"""The server side of the API's parameter rules (accounts_app/rules.py).

The shared table tests/rule_cases.json is the contract: the same cases run in Chromium
against static/js/rules.js (tests/test_rules_browser.py).
"""

from __future__ import annotations

import json
import re

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.functional import Promise

from accounts_app import rules
from tests.fixtures.browser import load_rule_cases

TABLE = load_rule_cases()


def case_id(case: dict) -> str:
    return f"{case['param']}: {case['why']}"


@pytest.mark.parametrize("case", TABLE["cases"], ids=case_id)
def test_every_case_of_the_table_gets_its_verdict_and_keys_in_order(case):
    violations = rules.validate(case["param"], case["value"])

    assert [v.key for v in violations] == case["keys"]
    assert rules.is_valid(case["param"], case["value"]) is case["valid"]
    assert all(v.param == case["param"] and v.message for v in violations)


@pytest.mark.parametrize("case", TABLE["cases"], ids=case_id)
def test_the_django_validator_raises_one_error_per_violation_coded_by_its_key(case):
    validator = rules.django_validator(case["param"])
    expected = rules.validate(case["param"], case["value"])

    if not expected:
        validator(case["value"])
        return
    with pytest.raises(ValidationError) as raised:
        validator(case["value"])
    assert [e.code for e in raised.value.error_list] == [v.key for v in expected]
    assert raised.value.messages == [v.message for v in expected]


@pytest.mark.parametrize("case", TABLE["instance_cases"], ids=lambda c: c["why"])
def test_instance_blockers_follow_the_table(case):
    blockers = rules.instance_blockers(
        instance_status=case["status"],
        engine_version=case["engine"],
        account_count=case["account_count"],
    )
    assert [b.key for b in blockers] == case["keys"]


@pytest.mark.parametrize("case", TABLE["privilege_cases"], ids=lambda c: c["why"])
def test_privilege_availability_follows_the_table(case):
    facts = {"architecture_type": case["architecture"], "engine_version": case["engine"]}

    assert rules.privilege_allowed(case["privilege"], **facts) is case["allowed"]
    violation = rules.privilege_violation(case["privilege"], **facts)
    assert (violation is None) is case["allowed"]


@pytest.mark.parametrize("case", TABLE["confirm_cases"], ids=lambda c: c["why"])
def test_the_confirmation_must_repeat_the_password(case):
    violations = rules.confirm_violations(case["password"], case["confirmation"])
    assert [v.key for v in violations] == case["keys"]


def test_the_table_covers_every_parameter_and_every_key():
    keys_seen = {(c["param"], key) for c in TABLE["cases"] for key in c["keys"]}
    keys_defined = {(p, c.key) for p, r in rules.RULES.items() for c in r.constraints}
    keys_defined |= {(p, "required") for p, r in rules.RULES.items() if r.required}

    assert {c["param"] for c in TABLE["cases"]} == set(rules.PARAMS)
    assert keys_defined <= keys_seen
    assert {c["param"] for c in TABLE["cases"] if c["valid"]} == set(rules.PARAMS)


def test_each_special_character_is_allowed_and_counts_as_a_type():
    assert not rules.is_valid("AccountPassword", "abcdef12")  # two types only
    for char in "!@#$%^&*()_+-=":
        assert rules.validate("AccountPassword", "abcdef1" + char) == [], char


# --- What the messages say --------------------------------------------------------------


def messages(param: str, value: str) -> list[str]:
    return [v.message for v in rules.validate(param, value)]


def test_a_missing_type_message_names_the_types_the_password_has():
    assert messages("AccountPassword", "abcdefg1") == [
        "Needs at least 3 of the 4 character types (uppercase letters, lowercase letters, "
        "digits, special characters); it has 2: lowercase letters, digits."
    ]


def test_a_password_with_no_type_at_all_says_it_has_none():
    assert messages("AccountPassword", "........")[1].endswith("; it has none.")


def test_the_start_and_reserved_messages_say_exactly_what_is_wrong():
    assert messages("AccountName", "Admin") == [
        "Must start with a lowercase letter (a–z).",
        "May only contain lowercase letters (a–z), digits (0–9) and underscores (_); found: 'A'.",
        "“admin” is a reserved word; choose another name.",
    ]


def test_forbidden_characters_are_listed_once_each_and_invisible_ones_by_code_point():
    assert messages("AccountName", "a b é\n é") == [
        "May only contain lowercase letters (a–z), digits (0–9) and underscores (_); "
        "found: ' ', 'é', U+000A."
    ]
    assert messages("AccountName", "a'b")[0].endswith('found: "\'".')


def test_a_long_list_of_forbidden_characters_ends_with_an_ellipsis():
    message = messages("AccountDescription", "a!@#$%^&*()")[0]
    assert message.endswith("found: '!', '@', '#', '$', '%', '^', '&', '*', ….")


def test_length_messages_give_the_limit_and_the_count():
    assert messages("AccountPassword", "Aa1!Aa1") == [
        "Must be at least 8 characters long; it has 7."
    ]
    assert messages("AccountName", "a" * 17) == ["Must be at most 16 characters long; it has 17."]


def test_the_web_address_prefix_has_its_own_message():
    assert messages("AccountDescription", "HTTPS://x")[0] == (
        "Must not start with “https://”: a description is not a web address."
    )


def test_a_value_that_looks_like_a_placeholder_is_not_formatted():
    assert messages("AccountName", "a%(count)s")[0].endswith("found: '%', '(', ')'.")


def test_the_repl_reason_names_the_instance_facts():
    assert rules.privilege_reason(
        "RoleRepl", architecture_type="cluster", engine_version="5.0"
    ) == (
        "Replication is only available on an instance with the standard architecture and "
        "Redis 4.0; this one has the cluster architecture and Redis 5.0."
    )


def test_instance_blocker_messages_give_the_facts():
    blockers = rules.instance_blockers(
        instance_status="Changing", engine_version="2.8", account_count=18
    )
    assert [b.message for b in blockers] == [
        "The instance is not running (status: Changing); accounts can only be created while "
        "its status is Normal.",
        "The instance runs Redis 2.8; accounts need Redis 4.0 or later.",
        "The instance already has 18 accounts; the maximum is 18.",
    ]


def test_every_message_and_label_is_marked_for_translation():
    lazy = [rules.MSG_MISMATCH, rules.LIST_SEPARATOR]
    for param_rules in rules.RULES.values():
        lazy.append(param_rules.required_message)
        lazy.extend(c.message for c in param_rules.constraints)
        lazy.extend(item.label for item in param_rules.checklist)
        for constraint in param_rules.constraints:
            if isinstance(constraint, rules.CharTypes):
                lazy.append(constraint.message_none)
                lazy.extend(t.label for t in constraint.types)
    lazy.extend(label for _value, label in rules.PRIVILEGE_CHOICES + rules.ACCOUNT_TYPE_CHOICES)
    lazy.extend(message for _key, _check, message in rules.INSTANCE_BLOCKERS)

    assert all(isinstance(text, Promise) for text in lazy)


def test_messages_are_translated_when_validating_not_when_importing(monkeypatch):
    # A stand-in catalogue: whatever the real zh_Hans one says, validate() and
    # browser_spec() must ask for the translation when they run.
    def fake_gettext(message):
        return "译:" + message

    monkeypatch.setattr(translation._trans, "gettext", fake_gettext)
    rules._spec_for.cache_clear()
    try:
        with translation.override("zh-hans"):
            assert messages("AccountName", "1a") == ["译:Must start with a lowercase letter (a–z)."]
            assert rules.browser_spec()["confirm"]["message"] == "译:The passwords do not match."
    finally:
        rules._spec_for.cache_clear()


# --- The Django side -----------------------------------------------------------------------


def test_a_form_field_with_the_validator_reports_the_keys_as_codes():
    class Form(forms.Form):
        name = forms.CharField(strip=False, validators=[rules.account_name_validator])

    form = Form(data={"name": "Admin"})

    assert not form.is_valid()
    assert [e.code for e in form.errors.as_data()["name"]] == ["start", "charset", "reserved"]


def test_validators_compare_equal_and_deconstruct_for_migrations():
    assert rules.django_validator("AccountName") == rules.account_name_validator
    assert rules.account_name_validator != rules.account_password_validator
    path, args, _kwargs = rules.account_name_validator.deconstruct()
    assert path == "accounts_app.rules.ParamValidator"
    assert args == ("AccountName",)


def test_an_unknown_parameter_fails_loudly():
    with pytest.raises(KeyError):
        rules.validate("AccountNmae", "x")
    with pytest.raises(KeyError):
        rules.django_validator("AccountNmae")


# --- What the browser gets -----------------------------------------------------------------


def test_widget_attrs_give_the_browser_its_own_limits_and_the_rule_name():
    name = rules.widget_attrs("AccountName")
    password = rules.widget_attrs("AccountPassword")
    description = rules.widget_attrs("AccountDescription")

    assert name["data-rule"] == "AccountName"
    assert name["required"] is True and name["maxlength"] == "16"
    assert (password["minlength"], password["maxlength"]) == ("8", "32")
    assert password["autocomplete"] == "new-password"
    assert "required" not in description
    assert (description["minlength"], description["maxlength"]) == ("2", "256")
    assert rules.widget_attrs("InstanceId", select=True) == {
        "data-rule": "InstanceId",
        "required": True,
    }


def test_the_pattern_escapes_what_the_v_flag_needs_escaped():
    # docs/alibaba-api.md, "Rules": `(`, `)` and `-` inside a class must be escaped.
    assert rules.widget_attrs("AccountPassword")["pattern"] == r"[A-Za-z0-9!@#$%\^&*\(\)_+\-=]*"
    assert rules.widget_attrs("AccountName")["pattern"] == "[a-z][a-z0-9_]*"


def test_python_and_pattern_agree_on_every_table_case_of_the_text_fields():
    for case in TABLE["cases"]:
        pattern = rules.RULES[case["param"]].pattern
        if not pattern or not case["value"]:
            continue
        # The JavaScript class syntax used here is also valid Python syntax.
        matches = re.fullmatch(f"(?:{pattern})", case["value"]) is not None
        assert matches is not ({"start", "charset"} & set(case["keys"])), case


def test_the_spec_is_plain_json_in_the_active_language():
    spec = rules.browser_spec()

    assert json.loads(json.dumps(spec)) == spec
    assert set(spec["params"]) == set(rules.PARAMS)
    assert spec["confirm"]["message"] == "The passwords do not match."


def test_the_spec_returned_is_a_copy_callers_may_change():
    rules.browser_spec()["params"].clear()
    assert rules.browser_spec()["params"]


def test_the_generator_draws_from_every_allowed_password_character_by_type():
    alphabet = rules.generation_alphabet()

    assert set(alphabet) == {"upper", "lower", "digit", "special"}
    assert alphabet["special"] == "!@#$%^&*()_+-="
    assert "".join(alphabet.values()) == rules._PASSWORD_CHARS.members()


def test_the_checklist_ticks_what_the_password_already_meets():
    states = {s.id: s.met for s in rules.checklist("AccountPassword", "abc1")}

    assert states == {
        "length": False,
        "charset": True,
        "type-upper": False,
        "type-lower": True,
        "type-digit": True,
        "type-special": False,
        "types": False,
    }
    assert all(s.met for s in rules.checklist("AccountPassword", "Aa1!Aa1!"))
    assert not any(s.met for s in rules.checklist("AccountPassword", ""))
