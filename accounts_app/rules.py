"""The CreateAccount parameter rules, as data: the one source of both validations.

The server validates with `validate()` (and the Django validators built on it); the
browser gets the same constraints from `browser_spec()`, rendered into the page with
`json_script`, and `static/js/rules.js` interprets them with the same algorithm. No
rule is written twice: the JavaScript knows the constraint *kinds*, never a parameter.

Reference: docs/alibaba-api.md, "Rules" (the rules this project enforces)
(the user's seed of the CreateAccount page, plus reserved names and Chinese descriptions).
Alibaba doc: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-createaccount-redis

Decisions this module makes, which both sides follow:

- Lengths count code points (Python `len`, JavaScript `Array.from(value).length`).
- Every character class is a list of explicit code-point ranges: ASCII `A-Z`, `a-z`,
  `0-9`, never `\\w`, `\\d` or `str.isalpha`, so full-width `ａ１` or Arabic-Indic digits
  never pass; matching is per character over the whole string, so a trailing newline
  is an unexpected character like any other.
- "Chinese characters" are the CJK Unified Ideographs block, U+4E00 to U+9FFF.
- Reserved words and forbidden prefixes are compared case-insensitively for ASCII
  letters only (`Admin` is reserved; a Unicode look-alike such as the Kelvin sign is
  not folded into `k`, it is simply a forbidden character).
- An empty value is `required` alone when the parameter is required, and valid
  when it is optional (the API then uses its default). Otherwise every broken
  constraint is reported, in the order of the parameter's constraint list:
  lengths, forbidden prefix, first character, allowed characters, character types,
  reserved word, choices.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible
from django.utils.functional import Promise
from django.utils.html import json_script
from django.utils.safestring import SafeString
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

SPEC_ELEMENT_ID = "kvstore-rules"
SPEC_VERSION = 1
# How many distinct offending characters a message lists before "…".
FOUND_LIMIT = 8
ELLIPSIS = "…"

MAX_ACCOUNTS_PER_INSTANCE = 18
RUNNING_STATUS = "Normal"
MIN_ENGINE_VERSION = (4, 0)
DEFAULT_PRIVILEGE = "RoleReadWrite"
DEFAULT_ACCOUNT_TYPE = "Normal"
PRIVILEGE_CHOICES = [
    ("RoleReadOnly", _("Read-only")),
    ("RoleReadWrite", _("Read/write")),
    ("RoleRepl", _("Replication")),
]
# GrantAccountPrivilege takes only these two (its page and the SDK's docstring): a
# downgrade is a grant of RoleReadOnly, and RoleRepl is given at creation only.
GRANTABLE_PRIVILEGES = ("RoleReadOnly", "RoleReadWrite")
ACCOUNT_TYPE_CHOICES = [("Normal", pgettext_lazy("account type", "Normal"))]
# RoleRepl only on a standard-architecture instance running Redis 4.0
# (docs/alibaba-api.md, "Rules").
# Both compared exactly as DescribeInstances writes them ("standard", "4.0").
REPL_ARCHITECTURES = ("standard",)
REPL_ENGINE_VERSIONS = ("4.0",)

PARAMS = (
    "InstanceId",
    "AccountName",
    "AccountPassword",
    "AccountPrivilege",
    "AccountDescription",
    "AccountType",
)

# The console's list (docs/alibaba-api.md, "Rules"), compared case-insensitively (ASCII).
RESERVED_WORDS = frozenset(
    """
    add admin all alter analyze and as asc asensitive aurora before between bigint binary blob
    both by call cascade case change char character check collate column condition connection
    constraint continue convert create cross current_date current_time current_timestamp
    current_user cursor database databases day_hour day_microsecond day_minute day_second dec
    decimal declare default delayed delete desc describe deterministic distinct distinctrow div
    double drc_rds drop dual each eagleye else elseif enclosed escaped exists exit explain false
    fetch float float4 float8 for force foreign from fulltext goto grant group guest having
    high_priority hour_microsecond hour_minute hour_second if ignore in index infile
    information_schema inner inout insensitive insert int int1 int2 int3 int4 int8 integer
    interval into is iterate join key keys kill label leading leave left like limit linear lines
    load localtime localtimestamp lock long longblob longtext loop low_priority match mediumblob
    mediumint mediumtext middleint minute_microsecond minute_second mod modifies mysql natural
    no_write_to_binlog not null numeric on optimize option optionally or order out outer outfile
    precision primary procedure purge raid0 range read reads real references regexp release
    rename repeat replace replicator require restrict return revoke right rlike root schema
    schemas second_microsecond select sensitive separator set show smallint spatial specific sql
    sql_big_result sql_calc_found_rows sql_small_result sqlexception sqlstate sqlwarning ssl
    starting straight_join table terminated test then tinyblob tinyint tinytext to trailing
    trigger true undo union unique unlock unsigned update usage use using utc_date utc_time
    utc_timestamp values varbinary varchar varcharacter varying when where while with write x509
    xor xtrabak year_month zerofill
    """.split()
)

# Characters shown as "U+XXXX" in messages rather than as themselves: controls, spaces
# other than U+0020, joiners, marks that combine with the quote, private use.
INVISIBLE_RANGES = (
    (0x0000, 0x001F),
    (0x007F, 0x00A0),
    (0x00AD, 0x00AD),
    (0x0300, 0x036F),
    (0x115F, 0x1160),
    (0x180B, 0x180F),
    (0x2000, 0x200F),
    (0x2028, 0x202F),
    (0x205F, 0x206F),
    (0x3000, 0x3000),
    (0x3164, 0x3164),
    (0xD800, 0xF8FF),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFFF),
    (0xE0000, 0x10FFFF),
)

LIST_SEPARATOR = pgettext_lazy("list separator", ", ")


# --- Character classes -------------------------------------------------------------


# Inside a class, JavaScript's `v` flag (what Chromium uses for `pattern`) needs these
# escaped (docs/alibaba-api.md, "Rules"); each is also a valid escape under the `u` flag.
_JS_CLASS_ESCAPE = frozenset("()[]{}/-\\|^")
_ASCII_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def _js_char(cp: int) -> str:
    char = chr(cp)
    if char in _JS_CLASS_ESCAPE:
        return "\\" + char
    if 0x20 <= cp <= 0x7E:
        return char
    return f"\\u{cp:04X}" if cp <= 0xFFFF else f"\\u{{{cp:X}}}"


def _py_char(cp: int) -> str:
    char = chr(cp)
    if char in _ASCII_ALNUM:
        return char
    if 0x20 < cp <= 0x7E:
        return "\\" + char
    return f"\\u{cp:04X}" if cp <= 0xFFFF else f"\\U{cp:08X}"


@dataclass(frozen=True)
class CharClass:
    """A set of code points, kept as ranges in the author's order.

    Python and JavaScript regexes are both generated from the ranges, so the two
    sides cannot disagree on what "a digit" is.
    """

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def span(cls, first: str, last: str) -> CharClass:
        return cls(((ord(first), ord(last)),))

    @classmethod
    def chars(cls, chars: str) -> CharClass:
        return cls(tuple((ord(c), ord(c)) for c in chars))

    def __or__(self, other: CharClass) -> CharClass:
        merged: list[tuple[int, int]] = []
        for lo, hi in self.ranges + other.ranges:
            # Never emit a character twice: `==` is a reserved double punctuator
            # under the `v` flag.
            if not any(a <= lo and hi <= b for a, b in merged):
                merged.append((lo, hi))
        return CharClass(tuple(merged))

    def __contains__(self, char: str) -> bool:
        cp = ord(char)
        return any(lo <= cp <= hi for lo, hi in self.ranges)

    def py_source(self, *, negate: bool = False) -> str:
        body = "".join(
            _py_char(lo) if lo == hi else f"{_py_char(lo)}-{_py_char(hi)}" for lo, hi in self.ranges
        )
        return f"[{'^' if negate else ''}{body}]"

    def js_source(self) -> str:
        """The class for a JavaScript RegExp with the `v` (or `u`) flag."""
        body = "".join(
            _js_char(lo) if lo == hi else f"{_js_char(lo)}-{_js_char(hi)}" for lo, hi in self.ranges
        )
        return f"[{body}]"

    def members(self) -> str:
        return "".join(chr(cp) for lo, hi in self.ranges for cp in range(lo, hi + 1))


UPPER = CharClass.span("A", "Z")
LOWER = CharClass.span("a", "z")
DIGIT = CharClass.span("0", "9")
LETTER = UPPER | LOWER
CHINESE = CharClass(((0x4E00, 0x9FFF),))
SPECIAL_CHARS = "!@#$%^&*()_+-="
SPECIAL = CharClass.chars(SPECIAL_CHARS)
SPECIALS_SHOWN = " ".join(SPECIAL_CHARS)


# --- Messages ------------------------------------------------------------------------
# English source text; placeholders are filled in by validate() and, from the same
# translated template, by rules.js. `%%` is a literal percent sign on both sides.

MSG_TOO_SHORT = _("Must be at least %(min)s characters long; it has %(count)s.")
MSG_TOO_LONG = _("Must be at most %(max)s characters long; it has %(count)s.")
MSG_START_LOWER = _("Must start with a lowercase letter (a–z).")
MSG_RESERVED = _("“%(word)s” is a reserved word; choose another name.")
MSG_CHOICE = _("Choose one of: %(choices)s.")
MSG_MISMATCH = _("The passwords do not match.")


def _join(items: Iterable[Any]) -> str:
    return str(LIST_SEPARATOR).join(str(item) for item in items)


def show_char(char: str) -> str:
    """How a message names one offending character: `'é'`, or `U+000A` when invisible."""
    cp = ord(char)
    if any(lo <= cp <= hi for lo, hi in INVISIBLE_RANGES):
        return f"U+{cp:04X}"
    return f'"{char}"' if char == "'" else f"'{char}'"


def _found(chars: Iterable[str]) -> str:
    unique = list(dict.fromkeys(chars))
    shown = [show_char(c) for c in unique[:FOUND_LIMIT]]
    if len(unique) > FOUND_LIMIT:
        shown.append(ELLIPSIS)
    return _join(shown)


def _ascii_lower(value: str) -> str | None:
    """The value with A-Z lowered, or None when it is not ASCII (never equal to a word)."""
    return value.lower() if value.isascii() else None


# --- Constraints -------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    param: str
    key: str
    message: str


@dataclass(frozen=True)
class Constraint:
    """One rule of one parameter: its kind (which rules.js interprets), its key, its message.

    `check` returns None when the value passes, else the dynamic placeholders of the
    message. `static_params` are placeholders fixed by the data (translated at use).
    """

    key: str
    message: Promise

    kind = ""

    def check(self, value: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def message_for(self, params: Mapping[str, Any]) -> Promise:
        return self.message

    def static_params(self) -> dict[str, Any]:
        return {}

    def data(self) -> dict[str, Any]:
        """The kind-specific data rules.js needs (besides kind, key, message, params)."""
        return {}

    def render(self, params: Mapping[str, Any]) -> str:
        return str(self.message_for(params)) % {**self.static_params(), **params}

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "message": str(self.message),
            "params": {k: str(v) for k, v in self.static_params().items()},
            **self.data(),
        }


@dataclass(frozen=True)
class MinLength(Constraint):
    min: int = 0
    kind = "min_length"

    def check(self, value: str) -> dict[str, Any] | None:
        return None if len(value) >= self.min else {"min": self.min, "count": len(value)}

    def data(self) -> dict[str, Any]:
        return {"min": self.min}


@dataclass(frozen=True)
class MaxLength(Constraint):
    max: int = 0
    kind = "max_length"

    def check(self, value: str) -> dict[str, Any] | None:
        return None if len(value) <= self.max else {"max": self.max, "count": len(value)}

    def data(self) -> dict[str, Any]:
        return {"max": self.max}


@dataclass(frozen=True)
class ForbiddenPrefixes(Constraint):
    """Prefixes compared case-insensitively (ASCII): `HTTPS://` is refused like `https://`."""

    prefixes: tuple[str, ...] = ()
    kind = "forbidden_prefix"

    def check(self, value: str) -> dict[str, Any] | None:
        for prefix in self.prefixes:
            if _ascii_lower(value[: len(prefix)]) == prefix:
                return {"prefix": prefix}
        return None

    def data(self) -> dict[str, Any]:
        return {"prefixes": list(self.prefixes)}


@dataclass(frozen=True)
class StartsWith(Constraint):
    chars: CharClass = CharClass(())
    kind = "start"

    def check(self, value: str) -> dict[str, Any] | None:
        return None if value and value[0] in self.chars else {}

    def data(self) -> dict[str, Any]:
        return {"class": self.chars.js_source()}


@dataclass(frozen=True)
class AllowedChars(Constraint):
    chars: CharClass = CharClass(())
    shown_params: tuple[tuple[str, Any], ...] = ()
    kind = "charset"

    @functools.cached_property
    def _forbidden(self) -> re.Pattern[str]:
        return re.compile(self.chars.py_source(negate=True))

    def check(self, value: str) -> dict[str, Any] | None:
        bad = self._forbidden.findall(value)
        return {"found": _found(bad)} if bad else None

    def static_params(self) -> dict[str, Any]:
        return dict(self.shown_params)

    def data(self) -> dict[str, Any]:
        return {"class": self.chars.js_source()}


@dataclass(frozen=True)
class CharType:
    name: str
    chars: CharClass
    label: Promise  # plural, inside a sentence: "uppercase letters"
    hint: Promise  # a checklist line: "An uppercase letter (A–Z)"

    @functools.cached_property
    def _pattern(self) -> re.Pattern[str]:
        return re.compile(self.chars.py_source())

    def present(self, value: str) -> bool:
        return self._pattern.search(value) is not None


@dataclass(frozen=True)
class CharTypes(Constraint):
    """At least `at_least` of the types present ("3 of the 4 character types")."""

    types: tuple[CharType, ...] = ()
    at_least: int = 0
    message_none: Promise | None = None  # when no type at all is present
    kind = "char_types"

    def check(self, value: str) -> dict[str, Any] | None:
        present = [t for t in self.types if t.present(value)]
        if len(present) >= self.at_least:
            return None
        return {"count": len(present), "present": _join(t.label for t in present)}

    def message_for(self, params: Mapping[str, Any]) -> Promise:
        return self.message_none if params["count"] == 0 and self.message_none else self.message

    def static_params(self) -> dict[str, Any]:
        return {
            "needed": self.at_least,
            "total": len(self.types),
            "types": _join(t.label for t in self.types),
        }

    def data(self) -> dict[str, Any]:
        return {
            "atLeast": self.at_least,
            "messageNone": str(self.message_none or self.message),
            "types": [
                {"name": t.name, "class": t.chars.js_source(), "label": str(t.label)}
                for t in self.types
            ],
        }


@dataclass(frozen=True)
class NotReserved(Constraint):
    words: frozenset[str] = frozenset()
    kind = "reserved"

    def check(self, value: str) -> dict[str, Any] | None:
        lowered = _ascii_lower(value)
        return {"word": lowered} if lowered in self.words else None

    def data(self) -> dict[str, Any]:
        return {"words": sorted(self.words)}


@dataclass(frozen=True)
class OneOf(Constraint):
    choices: tuple[tuple[str, Promise], ...] = ()
    kind = "choice"

    def check(self, value: str) -> dict[str, Any] | None:
        return None if any(value == v for v, _label in self.choices) else {}

    def static_params(self) -> dict[str, Any]:
        return {"choices": _join(label for _value, label in self.choices)}

    def data(self) -> dict[str, Any]:
        return {"choices": [[v, str(label)] for v, label in self.choices]}


def _label(label: Promise) -> str:
    """A checklist line; the special characters are a placeholder, not translator text."""
    return str(label) % {"specials": SPECIALS_SHOWN}


@dataclass(frozen=True)
class ChecklistItem:
    """One line of the password checklist: met when none of `keys` is broken,
    or (with `char_type`) when a character of that type is present."""

    id: str
    label: Promise
    keys: tuple[str, ...] = ()
    char_type: str = ""


@dataclass(frozen=True)
class ParamRules:
    name: str
    required: bool
    required_message: Promise
    constraints: tuple[Constraint, ...]
    default: str | None = None
    pattern: str | None = None  # the `pattern` attribute, JavaScript `v` syntax
    checklist: tuple[ChecklistItem, ...] = ()
    generator_length: int = 0

    def constraint(self, kind: str) -> Constraint | None:
        return next((c for c in self.constraints if c.kind == kind), None)


def _pattern(start: CharClass | None, allowed: CharClass) -> str:
    return f"{start.js_source() if start else ''}{allowed.js_source()}*"


# --- The rules of each parameter (docs/alibaba-api.md, "Rules") ------------------------

_NAME_CHARS = LOWER | DIGIT | CharClass.chars("_")
_PASSWORD_CHARS = UPPER | LOWER | DIGIT | SPECIAL
# What a generated password is drawn from (services/fleet.py: one password per instance).
PASSWORD_ALPHABET = _PASSWORD_CHARS.members()
_DESCRIPTION_START = LETTER | CHINESE
_DESCRIPTION_CHARS = LETTER | CHINESE | DIGIT | CharClass.chars("_-")
# Instance IDs have no documented grammar; every one seen is `r-` and lowercase
# alphanumerics (`r-bp1zxszhcgatnx****`). This keeps garbage out without guessing more.
_INSTANCE_CHARS = LOWER | DIGIT | CharClass.chars("-")

_PASSWORD_TYPES = (
    CharType("upper", UPPER, _("uppercase letters"), _("An uppercase letter (A–Z)")),
    CharType("lower", LOWER, _("lowercase letters"), _("A lowercase letter (a–z)")),
    CharType("digit", DIGIT, _("digits"), _("A digit (0–9)")),
    CharType("special", SPECIAL, _("special characters"), _("A special character (%(specials)s)")),
)

RULES: dict[str, ParamRules] = {
    "InstanceId": ParamRules(
        name="InstanceId",
        required=True,
        required_message=_("Choose an instance."),
        constraints=(
            MaxLength("too_long", MSG_TOO_LONG, max=64),
            StartsWith("start", MSG_START_LOWER, chars=LOWER),
            AllowedChars(
                "charset",
                _(
                    "May only contain lowercase letters (a–z), digits (0–9) and hyphens (-); "
                    "found: %(found)s."
                ),
                chars=_INSTANCE_CHARS,
            ),
        ),
        pattern=_pattern(LOWER, _INSTANCE_CHARS),
    ),
    "AccountName": ParamRules(
        name="AccountName",
        required=True,
        required_message=_("Enter an account name."),
        constraints=(
            # The seed's limit of 16; the current API allows more, the seed wins
            # (docs/alibaba-api.md, "Rules").
            MaxLength("too_long", MSG_TOO_LONG, max=16),
            StartsWith("start", MSG_START_LOWER, chars=LOWER),
            AllowedChars(
                "charset",
                _(
                    "May only contain lowercase letters (a–z), digits (0–9) and underscores (_); "
                    "found: %(found)s."
                ),
                chars=_NAME_CHARS,
            ),
            # InvalidAccountName.Forbid on the real server.
            NotReserved("reserved", MSG_RESERVED, words=RESERVED_WORDS),
        ),
        pattern=_pattern(LOWER, _NAME_CHARS),
    ),
    "AccountPassword": ParamRules(
        name="AccountPassword",
        required=True,
        required_message=_("Enter a password."),
        constraints=(
            MinLength("too_short", MSG_TOO_SHORT, min=8),
            MaxLength("too_long", MSG_TOO_LONG, max=32),
            # Unlike the other parameters' messages, this one never quotes the characters
            # found: they are the password's, and the page or API answer would echo them.
            AllowedChars(
                "charset",
                _(
                    "May only contain letters (A–Z, a–z), digits (0–9) and these special "
                    "characters: %(specials)s."
                ),
                chars=_PASSWORD_CHARS,
                shown_params=(("specials", SPECIALS_SHOWN),),
            ),
            CharTypes(
                "char_types",
                _(
                    "Needs at least %(needed)s of the %(total)s character types (%(types)s); "
                    "it has %(count)s: %(present)s."
                ),
                types=_PASSWORD_TYPES,
                at_least=3,
                message_none=_(
                    "Needs at least %(needed)s of the %(total)s character types (%(types)s); "
                    "it has none."
                ),
            ),
        ),
        pattern=_pattern(None, _PASSWORD_CHARS),
        checklist=(
            ChecklistItem(
                "length", _("8 to 32 characters"), keys=("required", "too_short", "too_long")
            ),
            ChecklistItem("charset", _("Only letters, digits and %(specials)s"), keys=("charset",)),
            *(ChecklistItem(f"type-{t.name}", t.hint, char_type=t.name) for t in _PASSWORD_TYPES),
            ChecklistItem("types", _("At least 3 of these 4 types"), keys=("char_types",)),
        ),
        generator_length=20,
    ),
    "AccountPrivilege": ParamRules(
        name="AccountPrivilege",
        required=False,
        required_message=_("Choose a privilege."),
        constraints=(OneOf("choice", MSG_CHOICE, choices=tuple(PRIVILEGE_CHOICES)),),
        default=DEFAULT_PRIVILEGE,
    ),
    "AccountDescription": ParamRules(
        name="AccountDescription",
        required=False,
        required_message=_("Enter a description."),
        constraints=(
            MinLength("too_short", MSG_TOO_SHORT, min=2),
            MaxLength("too_long", MSG_TOO_LONG, max=256),
            ForbiddenPrefixes(
                "forbidden_prefix",
                _("Must not start with “%(prefix)s”: a description is not a web address."),
                prefixes=("http://", "https://"),
            ),
            StartsWith(
                "start",
                _("Must start with a letter (A–Z, a–z) or a Chinese character."),
                chars=_DESCRIPTION_START,
            ),
            AllowedChars(
                "charset",
                _(
                    "May only contain letters, Chinese characters, digits (0–9), "
                    "underscores (_) and hyphens (-); found: %(found)s."
                ),
                chars=_DESCRIPTION_CHARS,
            ),
        ),
        pattern=_pattern(_DESCRIPTION_START, _DESCRIPTION_CHARS),
    ),
    "AccountType": ParamRules(
        name="AccountType",
        required=False,
        required_message=_("Choose an account type."),
        constraints=(OneOf("choice", MSG_CHOICE, choices=tuple(ACCOUNT_TYPE_CHOICES)),),
        default=DEFAULT_ACCOUNT_TYPE,
    ),
}


# --- Validation ----------------------------------------------------------------------


def validate(param: str, value: str) -> list[Violation]:
    """Every rule `value` breaks, in constraint order; an empty list means valid.

    Messages are translated into the active language. Raises KeyError for an unknown
    parameter: a typo in a caller should fail loudly, not validate nothing.
    """
    rules = RULES[param]
    if value == "":
        if rules.required:
            return [Violation(param, "required", str(rules.required_message))]
        return []
    violations = []
    for constraint in rules.constraints:
        params = constraint.check(value)
        if params is not None:
            violations.append(Violation(param, constraint.key, constraint.render(params)))
    return violations


def is_valid(param: str, value: str) -> bool:
    return not validate(param, value)


def confirm_violations(password: str, confirmation: str) -> list[Violation]:
    """The confirm field: the same text as the password, or "The passwords do not match"."""
    if password == confirmation:
        return []
    return [Violation("AccountPassword", "mismatch", str(MSG_MISMATCH))]


def passwords_do_not_match_message() -> str:
    return str(MSG_MISMATCH)


@deconstructible
class ParamValidator:
    """A Django validator for one API parameter: every violation becomes one
    ValidationError whose code is the violation's key."""

    def __init__(self, param: str) -> None:
        if param not in RULES:
            raise KeyError(param)
        self.param = param

    def __call__(self, value: Any) -> None:
        violations = validate(self.param, "" if value is None else str(value))
        if violations:
            raise ValidationError([ValidationError(v.message, code=v.key) for v in violations])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamValidator) and other.param == self.param

    def __hash__(self) -> int:
        return hash(self.param)


def django_validator(param: str) -> ParamValidator:
    return ParamValidator(param)


account_name_validator = ParamValidator("AccountName")
account_password_validator = ParamValidator("AccountPassword")


@dataclass(frozen=True)
class ChecklistState:
    id: str
    label: str
    met: bool


def checklist(param: str, value: str) -> list[ChecklistState]:
    """The live checklist of a parameter (the password's), as rules.js shows it."""
    rules = RULES[param]
    keys = {v.key for v in validate(param, value)}
    types = rules.constraint("char_types")
    present = {t.name for t in types.types if t.present(value)} if types else set()
    states = []
    for item in rules.checklist:
        if item.char_type:
            met = item.char_type in present
        else:
            met = value != "" and not keys.intersection(item.keys)
        states.append(ChecklistState(item.id, _label(item.label), met))
    return states


def generation_alphabet(param: str = "AccountPassword") -> dict[str, str]:
    """The characters of each type the password generator draws from (every allowed one)."""
    types = RULES[param].constraint("char_types")
    assert isinstance(types, CharTypes)
    return {t.name: t.chars.members() for t in types.types}


# --- Instance-dependent rules ----------------------------------------------------------

_ENGINE_RE = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})")


def engine_tuple(engine_version: str) -> tuple[int, int] | None:
    """`"4.0"` -> (4, 0); anything else (`"4"`, `"7.0 "`, `""`) -> None."""
    match = _ENGINE_RE.fullmatch(engine_version or "")
    return (int(match[1]), int(match[2])) if match else None


MSG_REPL_UNAVAILABLE = _(
    "%(privilege)s is only available on an instance with the standard architecture and "
    "Redis 4.0; this one has the %(architecture)s architecture and Redis %(engine)s."
)
MSG_REPL_REQUIREMENT = _(
    "%(privilege)s is only available on an instance with the standard architecture and Redis 4.0."
)
# RoleRepl is the only privilege with requirements (docs/alibaba-api.md, "Rules").
PRIVILEGE_REQUIREMENTS = {
    "RoleRepl": {"architectures": REPL_ARCHITECTURES, "engines": REPL_ENGINE_VERSIONS},
}


def _privilege_label(privilege: str) -> str:
    return str(dict(PRIVILEGE_CHOICES).get(privilege, privilege))


def privilege_allowed(privilege: str, *, architecture_type: str, engine_version: str) -> bool:
    if privilege not in dict(PRIVILEGE_CHOICES):
        return False
    needs = PRIVILEGE_REQUIREMENTS.get(privilege)
    if needs is None:
        return True
    return architecture_type in needs["architectures"] and engine_version in needs["engines"]


def privilege_reason(
    privilege: str, *, architecture_type: str | None = None, engine_version: str | None = None
) -> str:
    """Why `privilege` is not available; names the instance's facts when given."""
    if privilege not in dict(PRIVILEGE_CHOICES):
        return RULES["AccountPrivilege"].constraints[0].render({})
    params = {"privilege": _privilege_label(privilege)}
    if architecture_type is None or engine_version is None:
        return str(MSG_REPL_REQUIREMENT) % params
    return str(MSG_REPL_UNAVAILABLE) % {
        **params,
        "architecture": architecture_type,
        "engine": engine_version,
    }


def privilege_violation(
    privilege: str, *, architecture_type: str, engine_version: str
) -> Violation | None:
    if privilege_allowed(
        privilege, architecture_type=architecture_type, engine_version=engine_version
    ):
        return None
    key = "privilege_unavailable" if privilege in dict(PRIVILEGE_CHOICES) else "choice"
    reason = privilege_reason(
        privilege, architecture_type=architecture_type, engine_version=engine_version
    )
    return Violation("AccountPrivilege", key, reason)


MSG_NOT_RUNNING = _(
    "The instance is not running (status: %(status)s); accounts can only be created "
    "while its status is Normal."
)
MSG_ENGINE_TOO_OLD = _("The instance runs Redis %(engine)s; accounts need Redis 4.0 or later.")
MSG_ACCOUNT_LIMIT = _("The instance already has %(count)s accounts; the maximum is %(max)s.")

# Checked in this order by instance_blockers() and rules.js (docs/alibaba-api.md,
# "CreateAccount").
INSTANCE_BLOCKERS: tuple[tuple[str, str, Promise], ...] = (
    ("instance_not_running", "status", MSG_NOT_RUNNING),
    ("engine_too_old", "engine", MSG_ENGINE_TOO_OLD),
    ("account_limit", "account_count", MSG_ACCOUNT_LIMIT),
)


def instance_blockers(
    *, instance_status: str, engine_version: str, account_count: int
) -> list[Violation]:
    """What stops any account from being created on the instance now."""
    blocked: dict[str, dict[str, Any]] = {}
    if instance_status != RUNNING_STATUS:
        blocked["instance_not_running"] = {"status": instance_status}
    engine = engine_tuple(engine_version)
    if engine is None or engine < MIN_ENGINE_VERSION:
        blocked["engine_too_old"] = {"engine": engine_version}
    if account_count >= MAX_ACCOUNTS_PER_INSTANCE:
        blocked["account_limit"] = {"count": account_count, "max": MAX_ACCOUNTS_PER_INSTANCE}
    return [
        Violation("InstanceId", key, str(message) % blocked[key])
        for key, _what, message in INSTANCE_BLOCKERS
        if key in blocked
    ]


def instance_option_attrs(
    *, architecture_type: str, engine_version: str, instance_status: str, account_count: int
) -> dict[str, str]:
    """The data attributes rules.js reads from an instance `<option>`."""
    return {
        "data-architecture": architecture_type,
        "data-engine": engine_version,
        "data-status": instance_status,
        "data-account-count": str(account_count),
    }


# --- What the browser gets -------------------------------------------------------------

_WIDGET_EXTRAS: dict[str, dict[str, Any]] = {
    "AccountName": {"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"},
    "AccountPassword": {
        "autocomplete": "new-password",
        "autocapitalize": "none",
        "spellcheck": "false",
    },
}


def widget_attrs(param: str, *, select: bool = False) -> dict[str, Any]:
    """HTML attributes for the field of `param`: the browser's own checks plus
    `data-rule`, which rules.js uses to attach the full checks.

    `pattern` is written for the `v` flag Chromium compiles it with (docs/alibaba-api.md,
    "Rules"): an unescaped `(` `)` or `-` in a class would make it invalid, and
    the browser would then silently accept anything. With `select=True` only the
    attributes a `<select>` accepts are returned.
    """
    rules = RULES[param]
    attrs: dict[str, Any] = {"data-rule": param}
    if rules.required:
        attrs["required"] = True
    if select:
        return attrs
    for constraint in rules.constraints:
        if isinstance(constraint, MinLength):
            attrs["minlength"] = str(constraint.min)
        elif isinstance(constraint, MaxLength):
            attrs["maxlength"] = str(constraint.max)
    if rules.pattern:
        attrs["pattern"] = rules.pattern
    attrs.update(_WIDGET_EXTRAS.get(param, {}))
    return attrs


def _param_spec(rules: ParamRules) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "required": rules.required,
        "requiredMessage": str(rules.required_message),
        "default": rules.default,
        "pattern": rules.pattern,
        "constraints": [c.spec() for c in rules.constraints],
    }
    if rules.checklist:
        spec["checklist"] = [
            {"id": i.id, "label": _label(i.label), "keys": list(i.keys), "charType": i.char_type}
            for i in rules.checklist
        ]
    if rules.generator_length:
        spec["generator"] = {
            "length": rules.generator_length,
            "sets": list(generation_alphabet(rules.name).values()),
        }
    return spec


def _instance_spec() -> dict[str, Any]:
    return {
        "runningStatus": RUNNING_STATUS,
        "minEngine": list(MIN_ENGINE_VERSION),
        "maxAccounts": MAX_ACCOUNTS_PER_INSTANCE,
        "blockers": [
            {"key": key, "check": what, "message": str(message)}
            for key, what, message in INSTANCE_BLOCKERS
        ],
    }


def _privileges_spec() -> dict[str, Any]:
    return {
        privilege: {
            "architectures": list(needs["architectures"]),
            "engines": list(needs["engines"]),
            "key": "privilege_unavailable",
            "label": _privilege_label(privilege),
            "message": str(MSG_REPL_UNAVAILABLE),
            "messageUnknown": str(MSG_REPL_REQUIREMENT),
        }
        for privilege, needs in PRIVILEGE_REQUIREMENTS.items()
    }


def _ui_spec() -> dict[str, str]:
    return {
        "show": str(_("Show")),
        "hide": str(_("Hide")),
        "showLabel": str(_("Show the password")),
        "hideLabel": str(_("Hide the password")),
        "generate": str(_("Generate")),
        "generateLabel": str(_("Generate a strong password")),
        "generated": str(_("A new password was generated and entered in both fields.")),
        "copy": str(_("Copy")),
        "copyLabel": str(_("Copy the password")),
        "copied": str(_("The password was copied to the clipboard.")),
        "checklistLabel": str(_("Password requirements")),
        "met": str(_("done")),
        "unmet": str(_("not yet")),
    }


@functools.lru_cache(maxsize=16)
def _spec_for(language: str | None) -> dict[str, Any]:
    return {
        "version": SPEC_VERSION,
        "listSeparator": str(LIST_SEPARATOR),
        "ellipsis": ELLIPSIS,
        "foundLimit": FOUND_LIMIT,
        "invisible": [list(r) for r in INVISIBLE_RANGES],
        "params": {name: _param_spec(rules) for name, rules in RULES.items()},
        "confirm": {"key": "mismatch", "message": str(MSG_MISMATCH)},
        "privileges": _privileges_spec(),
        "instance": _instance_spec(),
        "ui": _ui_spec(),
    }


def browser_spec() -> dict[str, Any]:
    """Everything rules.js needs, messages translated into the active language.

    Call it while rendering (inside the request's language) and render it with
    `{{ rules_spec|json_script:"kvstore-rules" }}`. Cached per language: the data is
    static, and a fresh copy keeps callers from mutating the cache.
    """
    return _copy(_spec_for(get_language()))


def browser_spec_script() -> SafeString:
    """browser_spec() as the page's `<script id="kvstore-rules">`, written once per
    language: copying the spec and escaping its JSON cost the request form 3 ms a page."""
    return _spec_script_for(get_language())


@functools.lru_cache(maxsize=16)
def _spec_script_for(language: str | None) -> SafeString:
    return json_script(_spec_for(language), "kvstore-rules")


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
