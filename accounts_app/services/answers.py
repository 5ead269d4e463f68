"""The shape of what the API answers, checked where it enters the database and the pages.

An endpoint that misbehaves (or a proxy in the way) can send anything: a RequestId of
a thousand characters, an error code with a NUL byte, an instance ID with a slash.
PostgreSQL refuses over-long values and NUL bytes with an error, and an instance ID
outside the documented shape cannot be put in a URL. So: identifiers are cleaned and
cut to their column (they only serve to quote to Alibaba's support), and an instance
whose fields do not fit is refused whole, with the reason, instead of being half
written (docs/alibaba-api.md, "Errors" and "DescribeInstances").
"""

from __future__ import annotations

import re

from accounts_app import rules
from accounts_app.models import AccountRequest, Instance

# RequestIds are UUIDs (letters, digits and hyphens); codes are dotted words.
_NOT_REQUEST_ID = re.compile(r"[^A-Za-z0-9-]")
_NOT_CODE = re.compile(r"[^A-Za-z0-9._-]")
REQUEST_ID_MAX = AccountRequest._meta.get_field("alibaba_request_id").max_length
CODE_MAX = AccountRequest._meta.get_field("error_code").max_length


def request_id(value: str | None) -> str:
    """A RequestId as it may be stored: its allowed characters, cut to the column."""
    return _NOT_REQUEST_ID.sub("", value or "")[:REQUEST_ID_MAX]


def error_code(value: str | None) -> str:
    """An error code as it may be stored: its allowed characters, cut to the column."""
    return _NOT_CODE.sub("", value or "")[:CODE_MAX]


def instance_problem(instance_id: str, values: dict[str, object]) -> str | None:
    """Why an instance as the API described it cannot be stored, or None when it can."""
    violations = rules.validate("InstanceId", instance_id)
    if violations:
        return f"instance ID {instance_id[:80]!r} is not an instance ID: {violations[0].message}"
    for name, value in values.items():
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            return f"{name} holds a NUL byte"
        max_length = Instance._meta.get_field(name).max_length
        if max_length is not None and len(value) > max_length:
            return f"{name} is {len(value)} characters long, over the {max_length} kept"
    return None
