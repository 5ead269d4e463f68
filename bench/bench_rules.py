"""Microseconds per call of the rules layer (accounts_app/rules.py), no form, no database.

    .venv/bin/python bench/bench_rules.py

Measures validating the values of one request form (InstanceId, AccountName,
AccountPrivilege, AccountDescription, AccountType) and of one execute form
(AccountPassword and its confirmation), valid and invalid, in English and Chinese; and
building the browser spec. The goal for a whole request form (Django form included) is
under 100 µs; this is the rules' share of it.
"""

from __future__ import annotations

import os
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.utils import translation  # noqa: E402

from accounts_app import rules  # noqa: E402

REQUEST_VALID = {
    "InstanceId": "r-bp1zxszhcgatnx5fbv",
    "AccountName": "orders_reader",
    "AccountPrivilege": "RoleReadOnly",
    "AccountDescription": "订单服务只读账号_orders-ro",
    "AccountType": "Normal",
}
REQUEST_INVALID = {
    "InstanceId": "r-bp1zxszhcgatnx5fbv",
    "AccountName": "Admin",
    "AccountPrivilege": "RoleSuper",
    "AccountDescription": "http://orders read only",
    "AccountType": "Normal",
}
EXECUTE_VALID = ("Xk3!vR9=qT2@wY7#", "Xk3!vR9=qT2@wY7#")
EXECUTE_INVALID = ("password 1", "password 2")


def validate_request(values: dict[str, str]) -> None:
    for param, value in values.items():
        rules.validate(param, value)


def validate_execute(password: str, confirmation: str) -> None:
    rules.validate("AccountPassword", password)
    rules.confirm_violations(password, confirmation)


def uncached_spec() -> None:
    rules._spec_for.cache_clear()
    rules.browser_spec()


def microseconds(call: Callable[[], object]) -> float:
    timer = timeit.Timer(call)
    number, _elapsed = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def main() -> None:
    cases: list[tuple[str, Callable[[], object]]] = [
        ("request form, valid", lambda: validate_request(REQUEST_VALID)),
        ("request form, invalid (5 violations)", lambda: validate_request(REQUEST_INVALID)),
        ("execute form, valid password", lambda: validate_execute(*EXECUTE_VALID)),
        ("execute form, invalid password", lambda: validate_execute(*EXECUTE_INVALID)),
        ("browser_spec(), cached per language", rules.browser_spec),
        ("browser_spec(), built afresh", uncached_spec),
    ]
    print(f"{'rules layer':44} {'en µs':>9} {'zh-hans µs':>11}")
    for label, call in cases:
        figures = []
        for language in ("en", "zh-hans"):
            with translation.override(language):
                call()  # warm the translation catalogue
                figures.append(microseconds(call))
        print(f"{label:44} {figures[0]:9.1f} {figures[1]:11.1f}")


if __name__ == "__main__":
    main()
