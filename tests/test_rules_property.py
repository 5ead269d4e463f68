"""Random strings: the three implementations of the rules agree on every one.

1. the server, accounts_app/rules.py (keys and messages);
2. the browser, static/js/rules.js in Chromium, a few hundred inputs per page.evaluate
   (keys and messages);
3. the simulator's own checks, accounts_app/simulator/checks.py, written separately from
   Alibaba's pages so that a mistake shared by the app's two sides still shows (verdicts
   only: the simulator answers with an Alibaba error code, not our messages).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts_app import rules
from accounts_app.simulator import checks as simulator
from tests.fixtures.browser import load_rule_cases, open_rules_page

# --- The third implementation: the simulator's checks -------------------------------------

SIMULATOR_CHECKS: dict[str, Callable[[str], object]] = {
    "AccountName": simulator.check_account_name,
    "AccountPassword": simulator.check_account_password,
    "AccountDescription": simulator.check_account_description,
    "AccountPrivilege": simulator.check_account_privilege,
    "AccountType": simulator.check_account_type,
}
# docs/alibaba-api.md, "CreateAccount": an empty optional parameter is simply not sent.
OPTIONAL_PARAMS = {"AccountPrivilege", "AccountDescription", "AccountType"}


def simulator_accepts(param: str, value: str) -> bool | None:
    """The simulator's verdict, or None where it has no opinion on the text alone
    (an InstanceId is looked up, not parsed: an unknown one is InvalidInstanceId.NotFound)."""
    check = SIMULATOR_CHECKS.get(param)
    if check is None:
        return None
    if value == "":
        return param in OPTIONAL_PARAMS  # omitted; a required one is MissingParameter
    try:
        check(value)
    except simulator.ApiError:
        return False
    return True


# --- Random strings, biased towards the edges of the rules -----------------------------------

TRICKY = (
    "aAzZ09_-!@#$%^&*()+=.:~ '\"/\\,;<>?[]{}|`\t\n\r\x00\x7f"
    "é测试日ａ１٣\u00a0\u200b\u3000\u212a😀𠀀ßİ"
)
PASSWORD_CHARS = "".join(rules.generation_alphabet().values())


def _mixed_case(word: str) -> st.SearchStrategy[str]:
    flags = st.lists(st.booleans(), min_size=len(word), max_size=len(word))
    return flags.map(
        lambda fs: "".join(c.upper() if f else c for c, f in zip(word, fs, strict=True))
    )


values = st.one_of(
    st.text(max_size=20),  # any code point but lone surrogates
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
    st.text(alphabet=st.sampled_from(TRICKY), max_size=24),
    st.text(alphabet=st.sampled_from("abcxyz019_" + "A-. \n"), max_size=20),
    st.text(alphabet=st.sampled_from(PASSWORD_CHARS + ". ~é\n１"), min_size=6, max_size=36),
    st.builds(
        lambda unit, times, tail: unit * times + tail,
        st.sampled_from(["a", "测", "Aa1!", "a b", "ab", "r-"]),
        st.integers(min_value=0, max_value=140),
        st.text(alphabet=st.sampled_from(TRICKY), max_size=3),
    ),
    st.sampled_from(sorted(rules.RESERVED_WORDS)).flatmap(_mixed_case),
    st.builds(
        str.__add__,
        st.sampled_from(["http://", "HTTPS://", "Http:/", "https:", "ｈttp://"]),
        st.text(alphabet=st.sampled_from(TRICKY), max_size=10),
    ),
    st.sampled_from(
        ["RoleReadOnly", "RoleReadWrite", "RoleRepl", "roleRepl", "Normal", "Normal\n", ""]
    ),
)


def server_view(param: str, value: str) -> list[dict[str, str]]:
    return [{"key": v.key, "message": v.message} for v in rules.validate(param, value)]


# --- Server and simulator: plain Python, many examples, full shrinking -------------------------


@pytest.mark.parametrize("param", sorted(SIMULATOR_CHECKS))
@settings(max_examples=400, deadline=None)
@given(value=values)
def test_the_server_and_the_simulator_give_the_same_verdict(param, value):
    assert simulator_accepts(param, value) is rules.is_valid(param, value)


def test_the_simulator_agrees_on_every_case_of_the_table():
    table = load_rule_cases()
    for case in table["cases"]:
        verdict = simulator_accepts(case["param"], case["value"])
        assert verdict in (None, case["valid"]), case


def test_the_simulator_agrees_on_the_instance_and_privilege_tables():
    table = load_rule_cases()
    for case in table["instance_cases"]:
        instance = {"InstanceStatus": case["status"], "EngineVersion": case["engine"]}
        try:
            simulator.check_instance_accepts_accounts(instance)
            existing = [
                {"AccountName": f"acct{n}", "AccountType": "Normal"}
                for n in range(case["account_count"])
            ]
            simulator.check_room_for("newname", existing)
        except simulator.ApiError:
            accepted = False
        else:
            accepted = True
        assert accepted is (case["keys"] == []), case
    for case in table["privilege_cases"]:
        instance = {"ArchitectureType": case["architecture"], "EngineVersion": case["engine"]}
        try:
            simulator.check_account_privilege(case["privilege"])
            simulator.check_privilege_on_instance(case["privilege"], instance)
        except simulator.ApiError:
            accepted = False
        else:
            accepted = True
        assert accepted is case["allowed"], case


# --- All three, with the browser: a few hundred inputs per round trip ------------------------


@pytest.mark.browser
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(values, min_size=40, max_size=60))
def test_server_browser_and_simulator_agree_on_random_strings(page, batch):
    # One page for every example: validate() is pure, nothing carries over.
    if not page.evaluate("() => 'KVStoreRules' in window"):
        open_rules_page(page)

    browser = page.evaluate(
        "([params, values]) => values.map(v => params.map(p => KVStoreRules.validate(p, v)))",
        [list(rules.PARAMS), batch],
    )

    for value, per_param in zip(batch, browser, strict=True):
        for param, got in zip(rules.PARAMS, per_param, strict=True):
            expected = server_view(param, value)
            assert got == expected, (param, value)
            verdict = simulator_accepts(param, value)
            assert verdict in (None, not expected), (param, value, "simulator")


@pytest.mark.browser
def test_a_large_batch_of_random_strings_gets_the_same_answers(page):
    # Hypothesis above shrinks a failure to one string; this covers more ground at once.
    batch: list[str] = []

    @settings(max_examples=300, deadline=None, database=None)
    @given(value=values)
    def collect(value):
        batch.append(value)

    collect()
    open_rules_page(page)
    browser = page.evaluate(
        "([params, values]) => values.map(v => params.map(p => KVStoreRules.validate(p, v)))",
        [list(rules.PARAMS), batch],
    )

    mismatches = [
        (param, value)
        for value, per_param in zip(batch, browser, strict=True)
        for param, got in zip(rules.PARAMS, per_param, strict=True)
        if got != server_view(param, value)
        or simulator_accepts(param, value) not in (None, not got)
    ]
    assert sorted(mismatches, key=lambda m: len(m[1]))[:5] == []
