"""Typed errors of the R-KVStore client, each with a sentence a DBA can act on.

Codes and messages are Alibaba's (CreateAccount error table and the gateway's common
errors: docs/alibaba-api.md, "Errors"). Codes starting with ``Client.`` are this
client's own, for failures where no Alibaba answer was read.

Reference: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-createaccount-redis
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

# Codes this client raises itself.
CONNECTION_FAILED = "Client.ConnectionFailed"  # refused, DNS, connect timeout: nothing sent
TLS_ERROR = "Client.TLSError"  # the TLS handshake failed: nothing sent
TIMEOUT = "Client.Timeout"  # sent, no complete answer before the read timeout or deadline
CONNECTION_LOST = "Client.ConnectionLost"  # sent, then the connection broke
MALFORMED_RESPONSE = "Client.MalformedResponse"  # not JSON, HTML page, unexpected shape
INVALID_ENDPOINT = "Client.InvalidEndpoint"
INSTANCE_NOT_FOUND = "InvalidInstanceId.NotFound"
DUPLICATE_NAME = "InvalidAccountName.Duplicate"

# The instance is busy (an account still being created, a configuration change, another
# operation holding its lock): nothing was created, and the same call can succeed a
# minute later (docs/alibaba-api.md, "Busy instances").
INSTANCE_BUSY_CODES = frozenset(
    {"IncorrectDBInstanceState", "OperationDeniedDBStatus", "LockTimeout"}
)
# Every spelling of throttling (docs/alibaba-api.md, "Retries").
THROTTLING_CODES = frozenset(
    {"Throttling", "Throttling.User", "Throttling.Api", "Rejected.Throttling"}
)


def is_throttling(code: str) -> bool:
    return code in THROTTLING_CODES or code.startswith("Throttling")


def is_instance_busy(code: str) -> bool:
    return code in INSTANCE_BUSY_CODES


_THROTTLED = _(
    "Alibaba Cloud is limiting the rate of API calls for this account. Nothing was "
    "created. Wait a minute and try again."
)
_BUSY = _(
    "The instance is busy: an account on it is still being created (that takes about a "
    "minute) or its configuration is changing. Nothing was created and the approval "
    "still stands: try again in a minute."
)
_SERVER_TROUBLE = _(
    "Alibaba Cloud had a temporary failure and nothing was created. Try again in a few "
    "minutes; if it persists, check the Alibaba Cloud status page."
)

HUMAN_MESSAGES: dict[str, Promise] = {
    # CreateAccount, documented table.
    "InvalidAccountName.Duplicate": _(
        "An account with this name already exists on the instance. Choose another name, "
        "or use the existing account."
    ),
    "InvalidAccountName.Format": _(
        "The account name is not valid: it must start with a lowercase letter, contain "
        "only lowercase letters, digits and underscores, and be 1 to 16 characters long."
    ),
    "InvalidAccountName.Forbid": _(
        "The account name is a reserved word (such as admin, root or select). Choose another name."
    ),
    "InvalidAccountPassword.Format": _(
        "The password is not valid: use 8 to 32 characters with at least three of "
        "uppercase letters, lowercase letters, digits and the special characters "
        "!@#$%^&*()_+-=, and nothing else."
    ),
    "InvalidAccountDescription.Format": _(
        "The description is not valid: it must be 2 to 256 characters, start with a letter, "
        "contain only letters, Chinese characters, digits, underscores and hyphens, and not "
        "start with http:// or https://."
    ),
    "InvalidAccountPrivilege.Malformed": _(
        "The permission is not valid for this instance. Use RoleReadOnly or RoleReadWrite; "
        "RoleRepl is only available on standard-architecture Redis 4.0 instances."
    ),
    "InvalidEngineVersion.Format": _(
        "This instance runs a Redis version without account support. Upgrade it to Redis "
        "4.0 or later before creating accounts."
    ),
    "InvalidDBInstanceAccountMode.Format": _(
        "This instance's account mode does not allow creating accounts through the API. "
        "Check the instance's configuration in the Alibaba Cloud console."
    ),
    "AccountLimitExceeded": _(
        "The instance already has the maximum of 18 accounts. Delete an unused account "
        "before creating a new one."
    ),
    # Seen from CreateAccount in practice (the Terraform provider retries them).
    "IncorrectDBInstanceState": _BUSY,
    "OperationDeniedDBStatus": _BUSY,
    "LockTimeout": _BUSY,
    "InvalidInstanceId.NotFound": _(
        "The instance does not exist in this region. Check the instance ID and region; "
        "it may have been released."
    ),
    # Other account operations.
    "InvalidAccountName.NotFound": _("The account does not exist on this instance."),
    "OperationDenied.AccountStatus": _(
        "The account is still being set up or changed. Wait about a minute until it is Available."
    ),
    # DeleteAccount, GrantAccountPrivilege, ResetAccountPassword, ModifyAccountDescription.
    "IncorrectAccount": _(
        "This account does not allow the change: built-in accounts cannot be deleted, "
        "reset or given another permission."
    ),
    "InvalidAccountPrivilege.Format": _(
        "The permission is not valid: an account's permission can be changed to "
        "RoleReadOnly or RoleReadWrite only."
    ),
    "IncorrectMinorVersion": _(
        "The instance's minor version does not support this change. Update the instance's "
        "minor version in the Alibaba Cloud console, then try again."
    ),
    "TaskExists": _(
        "A change to this account is still in progress. Wait about a minute until it is "
        "Available, then try again."
    ),
    "InvalidParameter": _(
        "Alibaba Cloud rejected one of the request's parameters. Check the values entered."
    ),
    # Gateway errors any call can get.
    "SignatureDoesNotMatch": _(
        "Alibaba Cloud rejected the request signature. The AccessKey secret configured for "
        "this dashboard is probably wrong: ask an administrator to check it."
    ),
    "IncompleteSignature": _(
        "Alibaba Cloud rejected the request signature as incomplete. Ask an administrator "
        "to check the dashboard's Alibaba Cloud configuration."
    ),
    "InvalidAccessKeySecret": _(
        "The AccessKey secret configured for this dashboard is wrong. Ask an administrator "
        "to check it."
    ),
    "InvalidTimeStamp.Expired": _(
        "Alibaba Cloud rejected the request because the server's clock is off by more than "
        "15 minutes. Ask an administrator to fix the clock (NTP) of the dashboard's server."
    ),
    "InvalidTimeStamp.Format": _(
        "Alibaba Cloud could not read the request's timestamp. Ask an administrator to "
        "check the dashboard's server clock."
    ),
    "SignatureNonceUsed": _(
        "Alibaba Cloud saw this request twice and rejected the repeat. Check the account "
        "list before trying again."
    ),
    "InvalidAccessKeyId.NotFound": _(
        "The AccessKey ID configured for this dashboard does not exist or was deleted. Ask "
        "an administrator to configure a valid key."
    ),
    "InvalidAccessKeyId.Inactive": _(
        "The AccessKey configured for this dashboard is disabled. Ask an administrator to "
        "enable it or configure another key."
    ),
    "InvalidSecurityToken.Expired": _(
        "The temporary (STS) credentials of this dashboard have expired. Ask an "
        "administrator to renew them."
    ),
    "MissingParameter": _(
        "The request lacked a required parameter. This is a defect of the dashboard: "
        "report it to its maintainers."
    ),
    "Forbidden.RAM": _(
        "The dashboard's RAM user is not allowed to do this. Ask an administrator to grant "
        "it the R-KVStore permissions it needs."
    ),
    "Throttling": _THROTTLED,
    "Throttling.User": _THROTTLED,
    "Throttling.Api": _THROTTLED,
    "Rejected.Throttling": _THROTTLED,
    "ServiceUnavailable": _SERVER_TROUBLE,
    "InternalError": _SERVER_TROUBLE,
    # This client's own codes.
    CONNECTION_FAILED: _(
        "The dashboard could not connect to the Alibaba Cloud API, so nothing was sent. "
        "Check the network and the endpoint setting, then try again."
    ),
    TLS_ERROR: _(
        "The secure connection to the Alibaba Cloud API could not be verified, so nothing "
        "was sent. Ask an administrator to check the endpoint and certificates."
    ),
    INVALID_ENDPOINT: _(
        "The Alibaba Cloud endpoint configured for this dashboard is not valid. Ask an "
        "administrator to check KVSTORE_ENDPOINT."
    ),
    TIMEOUT: _("Alibaba Cloud did not answer in time. Try again in a few minutes."),
    CONNECTION_LOST: _(
        "The connection to Alibaba Cloud broke before an answer arrived. Try again in a few "
        "minutes."
    ),
    MALFORMED_RESPONSE: _(
        "Alibaba Cloud's answer could not be read (a proxy may be in the way). Try again; if "
        "it persists, ask an administrator to check the endpoint setting."
    ),
}

_GENERIC = _(
    "Alibaba Cloud refused the request with error {code}: {message} Check the request, "
    "and contact an administrator if it is unclear."
)

# For a code without a sentence of its own, when the API's text is not kept (a call that
# carried a password).
_GENERIC_WITHOUT_TEXT = _(
    "Alibaba Cloud refused the request with error {code}. Nothing was created. Check the "
    "request, and contact an administrator if it is unclear."
)

_OUTCOME_UNKNOWN = _(
    "The request reached Alibaba Cloud but no clear answer came back, so the account may "
    "or may not have been created. Do not retry blindly: check the instance's account "
    "list first."
)


def human_message_for(code: str, message: str = "") -> Promise:
    """The sentence for a code; every throttling code shares one."""
    if code in HUMAN_MESSAGES:
        return HUMAN_MESSAGES[code]
    if is_throttling(code):
        return _THROTTLED
    if not message:
        return format_lazy(_GENERIC_WITHOUT_TEXT, code=code)
    return format_lazy(_GENERIC, code=code, message=message)


class AlibabaApiError(Exception):
    """An error answer from the API, or a failure to get one.

    ``message`` is Alibaba's own text (or this client's, for ``Client.*`` codes); the
    client strips anything that could echo a request parameter before building it, so
    neither ``str()`` nor ``repr()`` can contain a password or a secret.
    """

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        http_status: int | None = None,
        request_id: str | None = None,
        recommend: str | None = None,
        action: str | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.http_status = http_status
        self.request_id = request_id
        self.recommend = recommend
        self.action = action
        super().__init__(code, message)

    @property
    def human_message(self) -> Promise:
        return human_message_for(self.code, self.message)

    def __str__(self) -> str:
        parts = [f"{self.code}: {self.message}" if self.message else self.code]
        if self.action:
            parts.append(f"action={self.action}")
        if self.http_status is not None:
            parts.append(f"http_status={self.http_status}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ApiUnreachable(AlibabaApiError):
    """Nothing was sent, or nothing could have been created: safe to try again later.

    Raised for connection failures before sending and after the last attempt on a
    retryable error (throttling, 5xx); ``code`` is the last one seen, and its sentence
    already says that nothing was created.
    """


class OutcomeUnknown(AlibabaApiError):
    """A CreateAccount request may have reached the server and no clear answer came back.

    Never retry blindly: ask DescribeAccounts whether the account exists
    (docs/alibaba-api.md, "Retries").
    """

    @property
    def human_message(self) -> Promise:
        return _OUTCOME_UNKNOWN


class InstanceNotFound(AlibabaApiError):
    """The instance does not exist: an answer, not an outage.

    DescribeInstanceAttribute says so with an empty ``DBInstanceAttribute`` list; other
    operations with ``InvalidInstanceId.NotFound`` (docs/alibaba-api.md,
    "DescribeInstanceAttribute").
    """
