"""The simulator's own checks, written from Alibaba's pages, not shared with the dashboard.

The simulator stands in for Alibaba's server, so it must not import the app's rules
module or its signing code: a mistake shared by both would then pass unnoticed. Every
rule here comes from Alibaba's pages as docs/alibaba-api.md retells them (CreateAccount,
the rules this project enforces, signing); codes, messages and HTTP statuses are
Alibaba's, exactly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

API_VERSION = "2015-01-01"
TIMESTAMP_TOLERANCE_SECONDS = 15 * 60  # "within 15 minutes" (V3 page)
MAX_ACCOUNTS_PER_INSTANCE = 18


class ApiError(Exception):
    """An error answer: HTTP status, Alibaba code and message."""

    def __init__(self, http_status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.http_status = http_status
        self.code = code
        self.message = message


# --- Errors, exactly as Alibaba lists them ---------------------------------------------

# code -> (HTTP status, message). CreateAccount's table, the codes seen in practice, the
# related operations' codes, and the gateway's common errors (docs/alibaba-api.md, "Errors").
ERRORS: dict[str, tuple[int, str]] = {
    "InvalidAccountName.Duplicate": (400, "Specified AccountName already exists in this instance."),
    "InvalidAccountName.Format": (400, "Specified AccountName is not valid."),
    "InvalidAccountName.Forbid": (400, "Specified AccountName is a keyword."),
    "InvalidAccountPassword.Format": (400, "Specified AccountPassword is not valid."),
    "InvalidAccountDescription.Format": (400, "Specified AccountDescription is not valid."),
    "InvalidAccountPrivilege.Malformed": (400, "Specified account privilege is not valid."),
    "InvalidEngineVersion.Format": (400, "Current EngineVersion does not support operations."),
    "InvalidDBInstanceAccountMode.Format": (
        400,
        "Current DB instance AccountMode does not support this operation.",
    ),
    "AccountLimitExceeded": (403, "Exceeding the allowed amount of account."),
    # Undocumented status for CreateAccount: 403 as on the sister RDS API, 404 for unknown.
    "IncorrectDBInstanceState": (403, "Current DB instance state does not support this operation."),
    "InvalidInstanceId.NotFound": (404, "The specified instance is not found."),
    # A busy instance (an account still being created, a change in progress); nothing done.
    "OperationDeniedDBStatus": (403, "The operation is not permitted due to status of instance."),
    "LockTimeout": (400, "Operation lock timeout, please retry later."),
    # Built-in (Super) accounts: GrantAccountPrivilege's code, used for every change to one.
    # Messages as on the DeleteAccount, GrantAccountPrivilege and ResetAccountPassword pages.
    "IncorrectAccount": (400, "Current DB instance account does not support this operation."),
    "InvalidAccountPrivilege.Format": (400, "Specified AccountPrivilege is not valid."),
    "InvalidAccountName.NotFound": (404, "Specified AccountName does not exist."),
    "OperationDenied.AccountStatus": (
        403,
        "The operation is not permitted due to status of account.",
    ),
    "TaskExists": (400, "Specified task have existed."),
    # Gateway.
    "SignatureDoesNotMatch": (400, "Specified signature is not matched with our calculation."),
    "IncompleteSignature": (400, "The request signature does not conform to Aliyun standards."),
    "InvalidTimeStamp.Expired": (400, "Specified time stamp or date value is expired."),
    "InvalidTimeStamp.Format": (400, "Specified time stamp or date value is not well formatted."),
    "SignatureNonceUsed": (400, "Specified signature nonce was used already."),
    "InvalidAccessKeyId.NotFound": (404, "Specified access key is not found."),
    "InvalidVersion": (400, "Specified parameter Version is not valid."),
    "InvalidAction.NotFound": (
        404,
        "Specified api is not found, please check your url and method.",
    ),
    "Forbidden.RAM": (403, "User not authorized to operate on the specified resource."),
    "Throttling.User": (400, "Request was denied due to user flow control."),
    "Rejected.Throttling": (400, "Request was denied due to flow control."),
    "ServiceUnavailable": (503, "The request has failed due to a temporary failure of the server."),
    "InternalError": (
        500,
        "The request processing has failed due to some unknown error, exception or failure.",
    ),
}


def error(code: str) -> ApiError:
    status, message = ERRORS[code]
    return ApiError(status, code, message)


def missing_parameter(name: str) -> ApiError:
    return ApiError(
        400,
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request is not '
        "supplied.",
    )


def invalid_parameter(name: str) -> ApiError:
    # Not in CreateAccount's table; the gateway's usual wording for a bad value.
    return ApiError(400, "InvalidParameter", f"Specified parameter {name} is not valid.")


def signature_does_not_match(string_to_sign: str | None = None) -> ApiError:
    mismatch = error("SignatureDoesNotMatch")
    if string_to_sign is not None:
        # The real V2 gateway appends its StringToSign; aliyunsdkcore parses the text after
        # the colon to tell a wrong secret from a wrong signature (docs/alibaba-api.md).
        mismatch.message += f" server string to sign is:{string_to_sign}"
    return mismatch


# --- CreateAccount parameter rules (docs/alibaba-api.md, "Rules") --------------------------------

# The console's reserved names, compared case-insensitively.
RESERVED_ACCOUNT_NAMES = frozenset(
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

# Starts with a lowercase letter; a-z, 0-9, _; 1 to 16 characters (the seed's limit).
_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,15}")
_SPECIAL_CHARACTERS = "!@#$%^&*()_+-="
_PASSWORD_RE = re.compile(r"[A-Za-z0-9!@#$%^&*()_+\-=]{8,32}")
# Letters: ASCII or Chinese (CJK unified ideographs); then also digits, "_" and "-".
_CHINESE = "\u4e00-\u9fff"
_DESCRIPTION_RE = re.compile(rf"[A-Za-z{_CHINESE}][A-Za-z{_CHINESE}0-9_\-]{{1,255}}")

PRIVILEGES = ("RoleReadOnly", "RoleReadWrite", "RoleRepl")
ACCOUNT_TYPES = ("Normal",)
MIN_ENGINE_VERSION = (4, 0)


def check_account_name_format(name: str) -> None:
    if not _NAME_RE.fullmatch(name):
        raise error("InvalidAccountName.Format")


def check_account_name(name: str) -> None:
    check_account_name_format(name)
    if name.lower() in RESERVED_ACCOUNT_NAMES:
        raise error("InvalidAccountName.Forbid")


def password_is_valid(password: str) -> bool:
    if not _PASSWORD_RE.fullmatch(password):
        return False
    kinds = (
        any(c.isascii() and c.isupper() for c in password),
        any(c.isascii() and c.islower() for c in password),
        any(c.isdigit() for c in password),
        any(c in _SPECIAL_CHARACTERS for c in password),
    )
    return sum(kinds) >= 3


def check_account_password(password: str) -> None:
    if not password_is_valid(password):
        raise error("InvalidAccountPassword.Format")


def check_account_description(description: str) -> None:
    # The URL prefixes could never match the character rule anyway (":" and "/"), but the
    # CreateAccount page names them, so they are refused explicitly.
    if description.startswith(("http://", "https://")):
        raise error("InvalidAccountDescription.Format")
    if not _DESCRIPTION_RE.fullmatch(description):
        raise error("InvalidAccountDescription.Format")


def check_account_privilege(privilege: str) -> None:
    if privilege not in PRIVILEGES:
        raise error("InvalidAccountPrivilege.Malformed")


# GrantAccountPrivilege takes only these two (its page and the SDK's docstring), and
# answers its own code, ``.Format``, where CreateAccount answers ``.Malformed``.
GRANTABLE_PRIVILEGES = ("RoleReadOnly", "RoleReadWrite")


def check_granted_privilege(privilege: str) -> None:
    if privilege not in GRANTABLE_PRIVILEGES:
        raise error("InvalidAccountPrivilege.Format")


def check_account_type(account_type: str) -> None:
    if account_type not in ACCOUNT_TYPES:
        raise invalid_parameter("AccountType")


def engine_version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (0,)


def check_instance_accepts_accounts(instance: Mapping[str, object]) -> None:
    """Preconditions on the instance itself (docs/alibaba-api.md, "CreateAccount")."""
    if instance.get("InstanceStatus") != "Normal":
        raise error("IncorrectDBInstanceState")
    if engine_version_tuple(str(instance.get("EngineVersion", ""))) < MIN_ENGINE_VERSION:
        raise error("InvalidEngineVersion.Format")


def check_privilege_on_instance(privilege: str, instance: Mapping[str, object]) -> None:
    """RoleRepl only on a standard-architecture Redis 4.0 instance (docs/alibaba-api.md)."""
    if privilege != "RoleRepl":
        return
    if instance.get("ArchitectureType") != "standard" or instance.get("EngineVersion") != "4.0":
        raise error("InvalidAccountPrivilege.Malformed")


def check_room_for(name: str, existing: list[Mapping[str, object]]) -> None:
    """No account of that name (built-in ones included); fewer than 18 created by users.

    The limit counts ``Normal`` accounts only: the built-in ``Super`` ones are not counted.
    """
    if any(account["AccountName"] == name for account in existing):
        raise error("InvalidAccountName.Duplicate")
    normal = [account for account in existing if account["AccountType"] == "Normal"]
    if len(normal) >= MAX_ACCOUNTS_PER_INSTANCE:
        raise error("AccountLimitExceeded")


def accounts_supported(instance: Mapping[str, object]) -> bool:
    return engine_version_tuple(str(instance.get("EngineVersion", ""))) >= MIN_ENGINE_VERSION


def check_changeable(account: Mapping[str, object]) -> None:
    """Built-in accounts are never deleted, reset or re-privileged."""
    if account["AccountType"] == "Super":
        raise error("IncorrectAccount")


# --- Signatures (docs/alibaba-api.md, "Signing"), verified with this module's own code -----------


def encode(value: str) -> str:
    """RFC 3986: unreserved characters as they are, everything else %XY of its UTF-8."""
    return quote(value, safe="-_.~")


def _sorted_pairs(params: Mapping[str, str]) -> str:
    return "&".join(f"{encode(k)}={encode(params[k])}" for k in sorted(params))


def parse_timestamp(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise error("InvalidTimeStamp.Format") from None


def check_fresh(value: str, now: datetime) -> None:
    if abs((now - parse_timestamp(value)).total_seconds()) > TIMESTAMP_TOLERANCE_SECONDS:
        raise error("InvalidTimeStamp.Expired")


@dataclass(frozen=True)
class V3Authorization:
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


_AUTH_RE = re.compile(
    r"ACS3-HMAC-SHA256 Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<sig>[0-9a-fA-F]+)"
)


def parse_v3_authorization(value: str) -> V3Authorization:
    match = _AUTH_RE.fullmatch(value.strip())
    if not match:
        raise error("IncompleteSignature")
    return V3Authorization(
        access_key_id=match["cred"],
        signed_headers=tuple(match["signed"].split(";")),
        signature=match["sig"].lower(),
    )


def v3_expected_signature(
    *,
    method: str,
    path: str,
    query: Mapping[str, str],
    header_values: Mapping[str, str],
    signed_headers: tuple[str, ...],
    payload_hash: str,
    secret: str,
) -> str:
    """Recompute the ACS3-HMAC-SHA256 signature over what the server received."""
    canonical_headers = "".join(f"{name}:{header_values[name]}\n" for name in signed_headers)
    canonical_request = "\n".join(
        (
            method,
            path or "/",
            _sorted_pairs(query),
            canonical_headers,
            ";".join(signed_headers),
            payload_hash,
        )
    )
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    string_to_sign = f"ACS3-HMAC-SHA256\n{digest}"
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def v2_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    unsigned = {k: v for k, v in params.items() if k != "Signature"}
    return f"{method}&{encode('/')}&{encode(_sorted_pairs(unsigned))}"


def v2_expected_signature(string_to_sign: str, secret: str) -> str:
    mac = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()
