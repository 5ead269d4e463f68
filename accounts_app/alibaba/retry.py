"""The retry policy of the R-KVStore client, all in one place: which failures may be
tried again, for which operations, and how long to wait between attempts.

Only what cannot have created anything is retried (docs/alibaba-api.md, "Retries"):
a request that never left, throttling, and the server errors that come before any work.
An operation that creates something is never retried once the request may have
arrived: the caller gets ``OutcomeUnknown`` and reconciles with DescribeAccounts.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from django.views.decorators.debug import sensitive_variables

from . import errors
from .errors import AlibabaApiError, ApiUnreachable, OutcomeUnknown
from .transport import AttemptFailed

log = logging.getLogger(__name__)

# The operations that change an account: an unclear failure is an unknown outcome, never
# tried again blindly. A repeated DeleteAccount would answer NotFound for a deletion that
# worked, a repeated reset would hide whether the first one arrived: the caller
# reconciles with DescribeAccounts instead (docs/alibaba-api.md, "Retries").
CREATING = frozenset({"CreateAccount"})
CHANGING = frozenset(
    {"DeleteAccount", "GrantAccountPrivilege", "ResetAccountPassword", "ModifyAccountDescription"}
)
NOT_REPEATABLE = CREATING | CHANGING
# Error codes that come before any work is done, whatever the HTTP status.
RETRYABLE_CODES = frozenset({"ServiceUnavailable", "InternalError"})

Kind = Literal["retryable", "ambiguous", "final"]


def kind_of(failed: AttemptFailed) -> Kind:
    """Whether another attempt may follow a failed one."""
    if failed.stage == "not_sent":
        return "retryable"
    if failed.stage == "unusable":
        return "final"
    if failed.stage == "unclear":
        return "ambiguous"
    code, status = failed.error.code, failed.error.http_status or 0
    if code == "ServiceTimeout" or status == 504:
        # A gateway timeout: the backend may have done the work (not a retry case).
        return "ambiguous"
    if errors.is_throttling(code) or code in RETRYABLE_CODES or status >= 500:
        return "retryable"
    return "final"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    backoff_base: float = 0.2
    max_backoff: float = 5.0
    # An ``x-acs-retry-after`` longer than this (seconds) is capped.
    max_retry_after: float = 10.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1.")

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Equal-jitter exponential backoff, never shorter than ``x-acs-retry-after``."""
        ceiling = min(self.backoff_base * 2 ** (attempt - 1), self.max_backoff)
        delay = ceiling / 2 + self.jitter() * ceiling / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    @sensitive_variables()
    def run(
        self, action: str, params: Mapping[str, str], attempt: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """``attempt()`` until it answers, a failure is final, or attempts run out."""
        last: AttemptFailed | None = None
        for number in range(1, self.max_attempts + 1):
            started = time.monotonic()
            try:
                data = attempt()
            except AttemptFailed as failed:
                _log(action, params, number, started, failed.error)
                kind = kind_of(failed)
                if kind == "final":
                    raise failed.error from None
                if kind == "ambiguous" and action in NOT_REPEATABLE:
                    raise _convert(OutcomeUnknown, failed.error) from None
                last = failed
                if number < self.max_attempts:
                    self.sleep(self.backoff(number, failed.retry_after))
                continue
            _log(action, params, number, started, None)
            return data
        assert last is not None
        raise _convert(ApiUnreachable, last.error) from None


def _convert(cls: type[AlibabaApiError], error: AlibabaApiError) -> AlibabaApiError:
    if type(error) is cls:
        return error
    return cls(
        error.code,
        error.message,
        http_status=error.http_status,
        request_id=error.request_id,
        recommend=error.recommend,
        action=error.action,
    )


def _log(
    action: str,
    params: Mapping[str, str],
    attempt: int,
    started: float,
    error: AlibabaApiError | None,
) -> None:
    # Only the action, the instance and the outcome: never a parameter value.
    elapsed_ms = (time.monotonic() - started) * 1000
    if error is None:
        # DEBUG: a sync makes two calls per instance, which would bury everything else
        # at the default level (LOG_LEVEL=DEBUG shows them).
        log.debug(
            "kvstore %s instance=%s attempt=%d ok in %.0f ms",
            action, params.get("InstanceId", "-"), attempt, elapsed_ms,
        )  # fmt: skip
    else:
        log.warning(
            "kvstore %s instance=%s attempt=%d failed in %.0f ms: %s (http %s, request %s)",
            action, params.get("InstanceId", "-"), attempt, elapsed_ms,
            error.code, error.http_status, error.request_id,
        )  # fmt: skip
