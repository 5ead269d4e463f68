"""A circuit breaker around the R-KVStore client, its state shared through the database.

When Alibaba Cloud's API keeps failing (unreachable, throttling, 5xx), every page that
calls it would make the user wait for timeouts and retries. After
``KVSTORE_BREAKER_THRESHOLD`` consecutive transient failures the breaker opens for
``KVSTORE_BREAKER_COOLDOWN`` seconds: calls then fail at once with ``BreakerOpen`` and
nothing goes on the wire. Once the cooldown has passed, one trial call is let through
(half-open): a success closes the breaker, a failure opens it for another cooldown.

The state is a ``CircuitBreaker`` row, not process memory, so that every app server
behind the load balancer opens and recovers together. Business errors (a duplicate
name, a bad parameter) are answers: they prove the API is up and reset the count.

The breaker is an optimisation: when its own row cannot be read or written (the
database is away), calls go ahead as if there were no breaker.

A closed breaker's read is kept for ``FRESH_FOR`` by the breaker object that made it,
so that calls close together (a pre-flight's two, on every view of a pending request)
read the row once. Only a clean read (no failure counted, not open) is kept, and only
while its calls succeed: a failure, or anything written, drops it, so this server's own
failures open the breaker exactly as before; another server's opening is seen once the
kept read is older than ``FRESH_FOR``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.functional import Promise
from django.views.decorators.debug import sensitive_variables

from accounts_app.alibaba.client import KVStoreClient, get_client
from accounts_app.alibaba.errors import (
    AlibabaApiError,
    ApiUnreachable,
    OutcomeUnknown,
    is_throttling,
)
from accounts_app.audit import messages as audit_messages
from accounts_app.models import CircuitBreaker

log = logging.getLogger(__name__)

KVSTORE_BREAKER = "kvstore"
BREAKER_OPEN = "Client.BreakerOpen"

# Worded once, in the audit log's catalogue: a refused execution records it too.
_UNAVAILABLE = audit_messages.UNAVAILABLE

T = TypeVar("T")

# How long a clean read of the row stands for the calls that follow it: long enough for
# one page's calls, short enough that a breaker another server opened stops this one's
# next calls within seconds (meanwhile this server's calls were succeeding anyway).
FRESH_FOR = timedelta(seconds=5)


class BreakerOpen(ApiUnreachable):
    """The breaker is open: no call was made. Safe to try again after the cooldown."""

    def __init__(self, open_until: datetime | None = None) -> None:
        super().__init__(BREAKER_OPEN, "The circuit breaker is open; no call was made.")
        self.open_until = open_until

    @property
    def human_message(self) -> Promise:
        return _UNAVAILABLE


def unavailable_message() -> Promise:
    return _UNAVAILABLE


def is_transient(error: BaseException) -> bool:
    """Failures that say the API is unwell, as opposed to answers that say no.

    An instance that does not exist (an empty DescribeInstanceAttribute) and a busy
    instance are answers: they keep the breaker closed.
    """
    if isinstance(error, BreakerOpen):
        return False
    if isinstance(error, ApiUnreachable | OutcomeUnknown):
        return True
    if isinstance(error, AlibabaApiError):
        return (error.http_status or 0) >= 500 or is_throttling(error.code)
    return False


@dataclass(frozen=True)
class _Snapshot:
    consecutive_failures: int
    open_until: datetime | None


class Breaker:
    """The shared breaker called ``name``; thresholds from settings unless given."""

    def __init__(
        self,
        name: str = KVSTORE_BREAKER,
        *,
        threshold: int | None = None,
        cooldown: float | None = None,
        now: Callable[[], datetime] = timezone.now,
    ) -> None:
        self.name = name
        self.threshold = threshold or settings.KVSTORE_BREAKER_THRESHOLD
        self.cooldown = timedelta(
            seconds=cooldown if cooldown is not None else settings.KVSTORE_BREAKER_COOLDOWN
        )
        self._now = now
        self._kept: tuple[_Snapshot, datetime] | None = None  # a clean read, and when

    # --- State ----------------------------------------------------------------------

    def is_open(self) -> bool:
        """True while cooling down. A breaker whose cooldown has passed is not open: the
        next call is its trial."""
        snapshot = self._read()
        return bool(snapshot and snapshot.open_until and snapshot.open_until > self._now())

    def reset(self) -> None:
        self._write(lambda rows: rows.update(consecutive_failures=0, open_until=None))

    # --- Around one call --------------------------------------------------------------

    def call(self, function: Callable[..., T], /, **kwargs: Any) -> T:
        snapshot = self._admit()
        try:
            result = function(**kwargs)
        except AlibabaApiError as error:
            if is_transient(error):
                self._record_failure()
            else:
                self._record_success(snapshot)
            raise
        except BaseException:
            self._kept = None
            raise
        self._record_success(snapshot)
        return result

    def _admit(self) -> _Snapshot | None:
        """Let the call through, or raise BreakerOpen without touching the network."""
        now = self._now()
        if self._kept is not None and now - self._kept[1] < FRESH_FOR:
            return self._kept[0]
        self._kept = None
        snapshot = self._read()
        if snapshot is None:
            return snapshot
        if snapshot.open_until is None:
            if not snapshot.consecutive_failures:
                self._kept = (snapshot, now)
            return snapshot
        if snapshot.open_until > now:
            raise BreakerOpen(snapshot.open_until)
        # Half-open: the first caller to move open_until on is the one trial; the
        # others (on this server or another) keep failing fast meanwhile. If the trial
        # dies without an answer, the next cooldown brings another one.
        claimed = self._write(
            lambda rows: rows.filter(open_until=snapshot.open_until).update(
                open_until=now + self.cooldown
            )
        )
        if claimed == 0:
            raise BreakerOpen(snapshot.open_until)
        log.info("circuit breaker %s: half-open, letting one trial call through", self.name)
        return snapshot

    def _record_success(self, snapshot: _Snapshot | None) -> None:
        # Written only when there is something to clear: most calls write nothing.
        if snapshot is not None and (snapshot.consecutive_failures or snapshot.open_until):
            self._write(lambda rows: rows.update(consecutive_failures=0, open_until=None))
            if snapshot.open_until:
                log.warning("circuit breaker %s: closed again", self.name)

    def _record_failure(self) -> None:
        def count(rows) -> int:
            if not rows.update(consecutive_failures=F("consecutive_failures") + 1):
                CircuitBreaker.objects.get_or_create(
                    name=self.name, defaults={"consecutive_failures": 1}
                )
            failures = rows.values_list("consecutive_failures", flat=True).first() or 0
            if failures >= self.threshold:
                rows.update(open_until=self._now() + self.cooldown)
            return failures

        failures = self._write(count)
        if failures is not None and failures >= self.threshold:
            log.warning(
                "circuit breaker %s: open for %ss after %s consecutive failures",
                self.name,
                int(self.cooldown.total_seconds()),
                failures,
            )

    # --- Storage ------------------------------------------------------------------------

    def _read(self) -> _Snapshot | None:
        # One plain SELECT on every call, no transaction of its own: it sits on the path
        # of every Alibaba call (two per pre-flight), and a read needs no atomicity.
        try:
            row = self._rows().values_list("consecutive_failures", "open_until").first()
            if row is None:
                CircuitBreaker.objects.get_or_create(name=self.name)
                return _Snapshot(0, None)
        except DatabaseError:
            log.warning("circuit breaker %s: state unreadable, calling anyway", self.name)
            return None
        return _Snapshot(*row)

    def _write(self, change: Callable[[Any], T]) -> T | None:
        self._kept = None  # what is kept no longer says what the row holds
        # A savepoint: a failed write must not break the caller's transaction.
        try:
            with transaction.atomic():
                return change(self._rows())
        except DatabaseError:
            log.warning("circuit breaker %s: state not saved", self.name)
            return None

    def _rows(self):
        return CircuitBreaker.objects.filter(name=self.name)


class GuardedClient:
    """A KVStoreClient whose every operation goes through the breaker."""

    def __init__(self, client: KVStoreClient, breaker: Breaker | None = None) -> None:
        self.client = client
        self.breaker = breaker or Breaker()

    def __repr__(self) -> str:
        return f"GuardedClient({self.client!r})"

    @sensitive_variables()
    def create_account(self, **kwargs: Any):
        return self.breaker.call(self.client.create_account, **kwargs)

    def delete_account(self, **kwargs: Any):
        return self.breaker.call(self.client.delete_account, **kwargs)

    def grant_account_privilege(self, **kwargs: Any):
        return self.breaker.call(self.client.grant_account_privilege, **kwargs)

    @sensitive_variables()
    def reset_account_password(self, **kwargs: Any):
        return self.breaker.call(self.client.reset_account_password, **kwargs)

    def modify_account_description(self, **kwargs: Any):
        return self.breaker.call(self.client.modify_account_description, **kwargs)

    def describe_accounts(self, **kwargs: Any):
        return self.breaker.call(self.client.describe_accounts, **kwargs)

    def describe_instances(self, **kwargs: Any):
        return self.breaker.call(self.client.describe_instances, **kwargs)

    def describe_instance_attribute(self, **kwargs: Any):
        return self.breaker.call(self.client.describe_instance_attribute, **kwargs)


def get_guarded_client() -> GuardedClient:
    """``get_client()`` behind the shared breaker: what the services call."""
    return GuardedClient(get_client())


def api_breaker() -> Breaker:
    return Breaker()
