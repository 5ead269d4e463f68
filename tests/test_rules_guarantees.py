"""Rules the shared case table does not reach: every invisible-character range, and the
password checklist's length line at both ends, in Python and in the browser's data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.utils import translation

from accounts_app import rules
from tests.fixtures.browser import load_rule_cases

# Written out here, not read from rules.py: dropping or narrowing a range must fail.
INVISIBLE = [
    ("C0 controls", 0x0000, 0x001F),
    ("DEL, C1 controls, no-break space", 0x007F, 0x00A0),
    ("soft hyphen", 0x00AD, 0x00AD),
    ("combining diacritical marks", 0x0300, 0x036F),
    ("Hangul jungseong fillers", 0x115F, 0x1160),
    ("Mongolian variation selectors", 0x180B, 0x180F),
    ("spaces, zero-width and direction marks", 0x2000, 0x200F),
    ("line and paragraph separators, embeddings", 0x2028, 0x202F),
    ("medium space, invisible operators", 0x205F, 0x206F),
    ("ideographic space", 0x3000, 0x3000),
    ("Hangul filler", 0x3164, 0x3164),
    ("surrogates and private use", 0xD800, 0xF8FF),
    ("variation selectors", 0xFE00, 0xFE0F),
    ("byte order mark", 0xFEFF, 0xFEFF),
    ("halfwidth Hangul filler", 0xFFA0, 0xFFA0),
    ("specials", 0xFFF0, 0xFFFF),
    ("tags, supplementary private use", 0xE0000, 0x10FFFF),
]


def invisible(cp: int) -> bool:
    return any(lo <= cp <= hi for _, lo, hi in INVISIBLE)


def charset_message(cp: int) -> str:
    violations = {v.key: v.message for v in rules.validate("AccountName", "app" + chr(cp))}
    return violations["charset"]


@pytest.mark.parametrize(("what", "lo", "hi"), INVISIBLE, ids=[r[0] for r in INVISIBLE])
def test_each_invisible_range_is_named_by_code_point_from_its_first_to_its_last(what, lo, hi):
    for cp in (lo, (lo + hi) // 2, hi):
        assert rules.show_char(chr(cp)) == f"U+{cp:04X}"
        assert f"U+{cp:04X}" in charset_message(cp)


@pytest.mark.parametrize(("what", "lo", "hi"), INVISIBLE, ids=[r[0] for r in INVISIBLE])
def test_the_characters_just_outside_each_invisible_range_are_shown_as_themselves(what, lo, hi):
    for cp in (lo - 1, hi + 1):
        if not 0 <= cp <= 0x10FFFF or invisible(cp):
            continue
        shown = rules.show_char(chr(cp))
        assert shown in (f"'{chr(cp)}'", f'"{chr(cp)}"'), (hex(cp), shown)


def test_the_browser_gets_exactly_these_seventeen_ranges():
    assert rules.browser_spec()["invisible"] == [[lo, hi] for _, lo, hi in INVISIBLE]


def password(length: int) -> str:
    return ("Aa1-" * 9)[:length]


@pytest.mark.parametrize(("length", "met"), [(7, False), (8, True), (32, True), (33, False)])
def test_the_length_line_of_the_checklist_is_met_from_8_to_32_characters(length, met):
    states = {s.id: s.met for s in rules.checklist("AccountPassword", password(length))}
    assert states["length"] is met
    # The other lines do not depend on the length: only this one moves.
    assert states["types"] and states["charset"]


@pytest.mark.parametrize(("length", "met"), [(7, False), (8, True), (32, True), (33, False)])
def test_the_browser_checklist_data_gives_the_same_length_verdict(length, met):
    """rules.js ticks a line when none of its keys is among the value's violation keys."""
    spec = rules.browser_spec()["params"]["AccountPassword"]
    line = next(item for item in spec["checklist"] if item["id"] == "length")
    broken = {v.key for v in rules.validate("AccountPassword", password(length))}
    assert (not broken.intersection(line["keys"])) is met
    limits = {c["kind"]: c for c in spec["constraints"]}
    assert limits["min_length"]["min"] == 8
    assert limits["max_length"]["max"] == 32


# --- The browser's data: every key is one rules.js reads, every label is translated ---

RULES_JS = Path(__file__).resolve().parent.parent / "static" / "js" / "rules.js"
# Sent but not read by rules.js: the server renders `pattern` into the input itself, and
# `version` names the spec's shape for caches.
NOT_READ_BY_RULES_JS = {"pattern", "version"}


def spec_keys(value, parent: str | None = None):
    """Property names in the spec; the names of parameters and privileges are data."""
    if isinstance(value, dict):
        for key, item in value.items():
            if parent not in ("params", "privileges"):
                yield key
            yield from spec_keys(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from spec_keys(item, parent)


def test_every_key_of_the_browser_spec_is_one_rules_js_reads():
    source = RULES_JS.read_text()
    read = set(re.findall(r"\.([A-Za-z_]\w*)", source)) | set(re.findall(r"\b(\w+):", source))

    unread = set(spec_keys(rules.browser_spec())) - read

    assert unread == NOT_READ_BY_RULES_JS


def test_every_ui_label_of_the_browser_spec_is_translated_into_chinese():
    english = rules.browser_spec()["ui"]
    with translation.override("zh-hans"):
        chinese = rules.browser_spec()["ui"]

    assert english.keys() == chinese.keys()
    untranslated = [key for key in english if not english[key] or chinese[key] == english[key]]
    assert untranslated == []


# --- Violations built outside validate(): the field they belong to and what they say ---

V = rules.Violation


def test_a_privilege_the_instance_does_not_allow_names_the_instances_facts():
    assert rules.privilege_violation(
        "RoleRepl", architecture_type="cluster", engine_version="4.0"
    ) == V(
        "AccountPrivilege",
        "privilege_unavailable",
        "Replication is only available on an instance with the standard architecture and "
        "Redis 4.0; this one has the cluster architecture and Redis 4.0.",
    )


def test_an_unknown_privilege_is_refused_like_the_form_refuses_it():
    assert rules.privilege_violation(
        "RoleAdmin", architecture_type="standard", engine_version="4.0"
    ) == V("AccountPrivilege", "choice", rules.validate("AccountPrivilege", "RoleAdmin")[0].message)


@pytest.mark.parametrize("privilege", ["RoleReadOnly", "RoleReadWrite", "RoleRepl"])
def test_a_privilege_the_instance_allows_is_no_violation(privilege):
    assert (
        rules.privilege_violation(privilege, architecture_type="standard", engine_version="4.0")
        is None
    )


@pytest.mark.parametrize(
    "facts", [{}, {"architecture_type": "standard"}, {"engine_version": "4.0"}]
)
def test_without_both_facts_the_reason_states_the_requirement_only(facts):
    assert rules.privilege_reason("RoleRepl", **facts) == (
        "Replication is only available on an instance with the standard architecture and Redis 4.0."
    )


def test_every_instance_blocker_is_reported_on_the_instance_field_in_order():
    assert rules.instance_blockers(
        instance_status="Changing", engine_version="2.8", account_count=18
    ) == [
        V(
            "InstanceId",
            "instance_not_running",
            "The instance is not running (status: Changing); accounts can only be created "
            "while its status is Normal.",
        ),
        V(
            "InstanceId",
            "engine_too_old",
            "The instance runs Redis 2.8; accounts need Redis 4.0 or later.",
        ),
        V(
            "InstanceId",
            "account_limit",
            "The instance already has 18 accounts; the maximum is 18.",
        ),
    ]


def test_a_confirmation_that_differs_is_a_mismatch_of_the_password_field():
    assert rules.confirm_violations("Aa1!Aa1!", "Aa1!Aa1?") == [
        V("AccountPassword", "mismatch", "The passwords do not match.")
    ]
    assert rules.confirm_violations("Aa1!Aa1!", "Aa1!Aa1!") == []


def test_the_checklist_lines_read_as_the_user_sees_them():
    labels = [state.label for state in rules.checklist("AccountPassword", "x")]

    assert labels == [
        "8 to 32 characters",
        "Only letters, digits and ! @ # $ % ^ & * ( ) _ + - =",
        "An uppercase letter (A–Z)",
        "A lowercase letter (a–z)",
        "A digit (0–9)",
        "A special character (! @ # $ % ^ & * ( ) _ + - =)",
        "At least 3 of these 4 types",
    ]


def test_a_parameter_without_a_checklist_has_an_empty_one():
    assert rules.checklist("AccountName", "app") == []


# --- The browser's templates say what the server says -------------------------------


def filled(template: str, params: dict) -> str:
    return template % {name: str(value) for name, value in params.items()}


@pytest.mark.parametrize("case", load_rule_cases()["cases"], ids=lambda case: case["why"])
def test_the_browsers_message_templates_give_the_servers_messages(case):
    """rules.js fills a constraint's template with its params and what it found."""
    param_rules = rules.RULES[case["param"]]
    spec = rules.browser_spec()["params"][case["param"]]
    if case["value"] == "":
        expected = [spec["requiredMessage"]] if spec["required"] else []
        assert [v.message for v in rules.validate(case["param"], "")] == expected
        return
    by_key = {c["key"]: c for c in spec["constraints"]}
    for constraint in param_rules.constraints:
        found = constraint.check(case["value"])
        if found is None:
            continue
        shown = by_key[constraint.key]
        template = shown["message"]
        if shown["kind"] == "char_types" and found["count"] == 0:
            template = shown["messageNone"]
        [server] = [
            v for v in rules.validate(case["param"], case["value"]) if v.key == shown["key"]
        ]
        assert filled(template, {**shown["params"], **found}) == server.message


def test_the_browser_knows_the_instance_preconditions_of_the_api():
    spec = rules.browser_spec()["instance"]

    assert (spec["runningStatus"], spec["minEngine"], spec["maxAccounts"]) == ("Normal", [4, 0], 18)
    server = rules.instance_blockers(
        instance_status="Changing", engine_version="2.8", account_count=18
    )
    facts = {"status": "Changing", "engine": "2.8", "count": 18, "max": 18}
    assert [(b["key"], b["check"]) for b in spec["blockers"]] == [
        ("instance_not_running", "status"),
        ("engine_too_old", "engine"),
        ("account_limit", "account_count"),
    ]
    assert [filled(b["message"], facts) for b in spec["blockers"]] == [v.message for v in server]


def test_the_browser_knows_where_replication_is_possible():
    repl = rules.browser_spec()["privileges"]["RoleRepl"]

    assert (repl["architectures"], repl["engines"], repl["key"]) == (
        ["standard"],
        ["4.0"],
        "privilege_unavailable",
    )
    facts = {"privilege": repl["label"], "architecture": "cluster", "engine": "5.0"}
    assert filled(repl["message"], facts) == rules.privilege_reason(
        "RoleRepl", architecture_type="cluster", engine_version="5.0"
    )
    assert filled(repl["messageUnknown"], facts) == rules.privilege_reason("RoleRepl")


def test_each_instance_option_attribute_is_one_rules_js_reads():
    attrs = rules.instance_option_attrs(
        architecture_type="standard",
        engine_version="4.0",
        instance_status="Normal",
        account_count=3,
    )

    assert attrs == {
        "data-architecture": "standard",
        "data-engine": "4.0",
        "data-status": "Normal",
        "data-account-count": "3",
    }
    source = RULES_JS.read_text()
    for name in attrs:
        camel = re.sub(r"-(\w)", lambda m: m[1].upper(), name.removeprefix("data-"))
        assert f"dataset.{camel}" in source, name
