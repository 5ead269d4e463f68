"""A small, typed client for the R-KVStore (ApsaraDB for Redis / Tair) API, 2015-01-01.

One method per remote operation, signed like Alibaba's own SDKs (V3 by default, V2 by
setting), over one ``requests.Session`` per process. The API facts this module relies
on, with Alibaba's pages: docs/alibaba-api.md.

Safety rules this module keeps:

- Every parameter, ``AccountPassword`` included, travels in the form-encoded POST body;
  the URL is always ``/``.
- Neither the secret, the STS token nor a password appears in a log line, an exception
  (message, ``repr`` or chained cause) or a ``repr``; functions that hold them are marked
  with ``sensitive_variables()`` so Django's error reports hide their locals.
- ``CreateAccount`` is retried only when nothing can have been created
  (docs/alibaba-api.md, "Retries").
  When the request may have arrived and no clear answer came back, the caller gets
  ``OutcomeUnknown`` and must reconcile with ``describe_accounts``.
- Each attempt has a wall-clock deadline: the body is read in small pieces with the
  deadline checked between them, and a watchdog shuts the socket down if a server keeps
  the call blocked (headers or body dripping one byte at a time) past it.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, quote_plus

import requests
import urllib3
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import echo, errors, signing
from .errors import AlibabaApiError, ApiUnreachable, InstanceNotFound, OutcomeUnknown

__all__ = [
    "Account",
    "CreateAccountResult",
    "InstanceAttribute",
    "InstanceSummary",
    "KVStoreClient",
    "endpoint_for_region",
    "get_client",
    "shared_session",
]

log = logging.getLogger(__name__)

API_VERSION = "2015-01-01"
# The newest SDK maps only cn-hangzhou to the central host (docs/alibaba-api.md, "Endpoints").
CENTRAL_ENDPOINT = "r-kvstore.aliyuncs.com"
PAGE_SIZE = 50  # DescribeInstances allows up to 50 per page.
MAX_PAGES = 1000
MAX_BODY_BYTES = 4 * 1024 * 1024
READ_CHUNK = 64 * 1024
USER_AGENT = "kvstore-accounts-dashboard/1.0"
_REGION_RE = re.compile(r"[a-z]{2}(?:-[a-z0-9]+)+")
# The V2 gateway appends its own StringToSign to SignatureDoesNotMatch; that string
# contains every parameter, a password included, so it never leaves this module.
_STRING_TO_SIGN_MARKER = " server string to sign is:"

Kind = Literal["retryable", "ambiguous", "final"]


# --- Results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateAccountResult:
    request_id: str
    instance_id: str
    account_name: str


@dataclass(frozen=True)
class Account:
    account_name: str
    account_status: str  # Available / Unavailable
    account_type: str  # Normal / Super
    account_description: str
    instance_id: str
    privilege: str  # RoleReadOnly / RoleReadWrite / RoleRepl


@dataclass(frozen=True)
class InstanceSummary:
    instance_id: str
    instance_name: str = ""
    region_id: str = ""
    zone_id: str = ""
    engine_version: str = ""
    architecture_type: str = ""  # standard / cluster / rwsplit
    edition_type: str = ""  # DescribeInstances only
    instance_type: str = ""
    instance_status: str = ""  # Normal, Changing, ...
    instance_class: str = ""
    connection_domain: str = ""
    port: int | None = None
    network_type: str = ""
    capacity: int | None = None  # MB


@dataclass(frozen=True)
class InstanceAttribute(InstanceSummary):
    # "Open": a password is required (the default); "Close": password-free access from
    # the VPC is on (docs/alibaba-api.md, "VpcAuthMode"). DescribeInstanceAttribute has
    # no EditionType: edition_type stays empty here.
    # What each value means is the app's business: accounts_app/vpc_auth.py.
    vpc_auth_mode: str = ""


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _instance_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    def text(key: str) -> str:
        value = item.get(key)
        return "" if value is None else str(value)

    return {
        "instance_id": text("InstanceId"),
        "instance_name": text("InstanceName"),
        "region_id": text("RegionId"),
        "zone_id": text("ZoneId"),
        "engine_version": text("EngineVersion"),
        "architecture_type": text("ArchitectureType"),
        "edition_type": text("EditionType"),
        "instance_type": text("InstanceType"),
        "instance_status": text("InstanceStatus"),
        "instance_class": text("InstanceClass"),
        "connection_domain": text("ConnectionDomain"),
        "port": _int_or_none(item.get("Port")),
        "network_type": text("NetworkType"),
        "capacity": _int_or_none(item.get("Capacity")),
    }


def _account_from(item: Mapping[str, Any], instance_id: str) -> Account:
    privileges = (item.get("DatabasePrivileges") or {}).get("DatabasePrivilege") or []
    privilege = str(privileges[0].get("AccountPrivilege", "")) if privileges else ""
    return Account(
        account_name=str(item.get("AccountName", "")),
        account_status=str(item.get("AccountStatus", "")),
        account_type=str(item.get("AccountType", "")),
        account_description=str(item.get("AccountDescription") or ""),
        instance_id=str(item.get("InstanceId") or instance_id),
        privilege=privilege,
    )


# --- Endpoints ----------------------------------------------------------------------------


def endpoint_for_region(region_id: str) -> str:
    """``r-kvstore.aliyuncs.com`` for cn-hangzhou, ``r-kvstore.<region>.aliyuncs.com`` else."""
    if not _REGION_RE.fullmatch(region_id or ""):
        raise ValueError(f"Not a region id: {region_id!r}")
    if region_id == "cn-hangzhou":
        return CENTRAL_ENDPOINT
    return f"r-kvstore.{region_id}.aliyuncs.com"


def parse_endpoint(endpoint: str) -> tuple[str, str]:
    """``(scheme, host[:port])`` of an override; HTTPS unless a scheme says otherwise."""
    text = endpoint.strip().rstrip("/")
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "https", text
    scheme = scheme.lower()
    if scheme not in ("http", "https") or not rest or any(c in rest for c in "/?#@ "):
        raise ValueError(f"Not an endpoint: {endpoint!r}")
    return scheme, rest


# --- Transport: one session, deadline watchdog ----------------------------------------------


class _DeadlineGuard:
    """One attempt's deadline; the watchdog shuts its socket down when it passes."""

    __slots__ = ("deadline", "done", "fired", "lock", "sock")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.sock: socket.socket | None = None
        self.fired = False
        self.done = False
        self.lock = threading.Lock()

    def expired(self) -> bool:
        return self.fired or time.monotonic() >= self.deadline

    def attach(self, sock: socket.socket | None) -> None:
        with self.lock:
            if self.done or sock is None:
                return
            self.sock = sock
            if self.fired:
                _shutdown(sock)

    def fire(self) -> None:
        with self.lock:
            if self.done:
                return
            self.fired = True
            if self.sock is not None:
                _shutdown(self.sock)

    def finish(self) -> None:
        with self.lock:
            self.done = True
            self.sock = None


def _shutdown(sock: socket.socket) -> None:
    # The plain socket method, also on an SSLSocket: it unblocks a recv in another thread
    # without touching the TLS object that thread is using.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _Watchdog:
    """A single daemon thread firing guards whose deadline passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _DeadlineGuard]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, guard: _DeadlineGuard) -> None:
        with self._cond:
            heapq.heappush(self._heap, (guard.deadline, next(self._counter), guard))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kvstore-deadline-watchdog", daemon=True
                )
                self._thread.start()
            if self._heap[0][2] is guard:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, _, guard = self._heap[0]
                if guard.done:
                    heapq.heappop(self._heap)
                    continue
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                heapq.heappop(self._heap)
            guard.fire()


_watchdog = _Watchdog()
_local = threading.local()


class _GuardedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().request(*args, **kwargs)
        guard = getattr(_local, "guard", None)
        if guard is not None:
            guard.attach(self.sock)


class _GuardedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().request(*args, **kwargs)
        guard = getattr(_local, "guard", None)
        if guard is not None:
            guard.attach(self.sock)


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }


_session_lock = threading.Lock()
_session: requests.Session | None = None


def shared_session() -> requests.Session:
    """The process's one session: no proxies or netrc from the environment.

    Every send passes ``allow_redirects=False`` (``max_redirects=0`` would not do: requests
    then raises on any 3xx answer instead of returning it).
    """
    global _session
    with _session_lock:
        if _session is None:
            session = requests.Session()
            session.trust_env = False
            session.verify = True
            adapter = _GuardedAdapter(pool_connections=8, pool_maxsize=32, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            _session = session
        return _session


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class _AttemptFailed(Exception):
    """Internal: one attempt failed; ``kind`` says whether another may follow."""

    def __init__(self, error: AlibabaApiError, kind: Kind, retry_after: float | None = None):
        super().__init__(error.code)
        self.error = error
        self.kind = kind
        self.retry_after = retry_after


def _is_not_sent(exc: requests.RequestException) -> bool:
    """True when the request certainly never left: connect timeout, refused, DNS."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


def _scrub(text: str, secrets: Sequence[str]) -> str:
    """Remove what could echo a request parameter from a server's message."""
    text = text.split(_STRING_TO_SIGN_MARKER, 1)[0]
    for secret in secrets:
        if not secret:
            continue
        once = quote(secret, safe="")
        for variant in {
            secret,
            once,
            quote_plus(secret),
            quote(once, safe=""),
            json.dumps(secret)[1:-1],
        }:
            text = text.replace(variant, "[redacted]")
    return text


# --- The client -------------------------------------------------------------------------------


class KVStoreClient:
    """Calls R-KVStore operations; see the module docstring for the safety rules."""

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        security_token: str | None = None,
        endpoint: str | None = None,
        signature_version: str = "v3",
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        deadline: float = 15.0,
        max_attempts: int = 3,
        backoff_base: float = 0.2,
        max_backoff: float = 5.0,
        max_retry_after: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        session: requests.Session | None = None,
    ) -> None:
        if not access_key_id or not access_key_secret:
            raise ValueError("An AccessKey ID and secret are required.")
        if signature_version not in ("v3", "v2"):
            raise ValueError("signature_version must be 'v3' or 'v2'.")
        if min(connect_timeout, read_timeout, deadline) <= 0 or max_attempts < 1:
            raise ValueError("Timeouts must be positive and max_attempts at least 1.")
        self.access_key_id = access_key_id
        self._access_key_secret = access_key_secret
        self._security_token = security_token or None
        self.endpoint = parse_endpoint(endpoint) if endpoint else None
        self.signature_version = signature_version
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.deadline = deadline
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._jitter = jitter
        self._session = session

    def __repr__(self) -> str:
        endpoint = "://".join(self.endpoint) if self.endpoint else "per-region"
        return (
            f"KVStoreClient(access_key_id={self.access_key_id[:4]!r}+'***', "
            f"access_key_secret='***', security_token={'***' if self._security_token else None}, "
            f"endpoint={endpoint!r}, signature_version={self.signature_version!r})"
        )

    # --- Operations ---------------------------------------------------------------------

    # Reference: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-createaccount-redis
    @sensitive_variables()
    def create_account(
        self,
        *,
        region_id: str,
        instance_id: str,
        account_name: str,
        account_password: str,
        account_privilege: str = "RoleReadWrite",
        account_description: str = "",
        account_type: str = "Normal",
    ) -> CreateAccountResult:
        params = {
            "RegionId": region_id,
            "InstanceId": instance_id,
            "AccountName": account_name,
            "AccountPassword": account_password,
            "AccountPrivilege": account_privilege,
            "AccountType": account_type,
        }
        if account_description:
            params["AccountDescription"] = account_description
        data = self._call(
            "CreateAccount",
            region_id,
            params,
            expects=lambda d: bool(d.get("AccountName") or d.get("AcountName")),
            mutating=True,
            secrets=(account_password,),
        )
        # "AcountName" is misspelled in every generation of the API; newer answers also
        # carry "AccountName" (docs/alibaba-api.md, "CreateAccount").
        return CreateAccountResult(
            request_id=str(data.get("RequestId", "")),
            instance_id=str(data.get("InstanceId") or instance_id),
            account_name=str(data.get("AccountName") or data.get("AcountName")),
        )

    # Reference: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-describeaccounts-redis
    def describe_accounts(
        self, *, region_id: str, instance_id: str, account_name: str | None = None
    ) -> list[Account]:
        params = {"RegionId": region_id, "InstanceId": instance_id}
        if account_name:
            params["AccountName"] = account_name
        data = self._call("DescribeAccounts", region_id, params, expects=lambda d: "Accounts" in d)
        items = (data.get("Accounts") or {}).get("Account") or []
        return [_account_from(item, instance_id) for item in items]

    # Reference: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-describeinstances-redis
    def describe_instances(
        self,
        *,
        region_id: str,
        instance_ids: Sequence[str] | None = None,
        instance_status: str | None = None,
    ) -> list[InstanceSummary]:
        """Every instance of the region, all pages."""
        instances: list[InstanceSummary] = []
        for page in range(1, MAX_PAGES + 1):
            params = {"RegionId": region_id, "PageNumber": str(page), "PageSize": str(PAGE_SIZE)}
            if instance_ids:
                params["InstanceIds"] = ",".join(instance_ids)
            if instance_status:
                params["InstanceStatus"] = instance_status
            data = self._call(
                "DescribeInstances", region_id, params, expects=lambda d: "Instances" in d
            )
            items = (data.get("Instances") or {}).get("KVStoreInstance") or []
            instances.extend(InstanceSummary(**_instance_fields(item)) for item in items)
            total = _int_or_none(data.get("TotalCount"))
            if not items:
                break
            if total is not None and len(instances) >= total:
                break
            if total is None and len(items) < PAGE_SIZE:
                break
        return instances

    # Reference: https://www.alibabacloud.com/help/en/redis/developer-reference/api-r-kvstore-2015-01-01-describeinstanceattribute-redis
    def describe_instance_attribute(self, *, region_id: str, instance_id: str) -> InstanceAttribute:
        """Raises InstanceNotFound when the answer lists no instance."""
        params = {"RegionId": region_id, "InstanceId": instance_id}
        data = self._call(
            "DescribeInstanceAttribute",
            region_id,
            params,
            expects=lambda d: isinstance(
                (d.get("Instances") or {}).get("DBInstanceAttribute"), list
            ),
        )
        items = data["Instances"]["DBInstanceAttribute"]
        if not items:
            # An empty list is how the API says the instance does not exist: an answer,
            # not an outage (docs/alibaba-api.md, "DescribeInstanceAttribute").
            raise InstanceNotFound(
                errors.INSTANCE_NOT_FOUND,
                "DescribeInstanceAttribute listed no instance.",
                request_id=_text(data.get("RequestId")),
                action="DescribeInstanceAttribute",
            )
        item = items[0]
        fields = _instance_fields(item)
        fields["edition_type"] = ""
        return InstanceAttribute(**fields, vpc_auth_mode=str(item.get("VpcAuthMode") or ""))

    # --- The call loop ------------------------------------------------------------------

    @sensitive_variables()
    def _call(
        self,
        action: str,
        region_id: str,
        params: dict[str, str],
        *,
        expects: Callable[[dict[str, Any]], bool],
        mutating: bool = False,
        secrets: Sequence[str] = (),
    ) -> dict[str, Any]:
        scheme, host = self.endpoint or ("https", endpoint_for_region(region_id))
        last: _AttemptFailed | None = None
        for attempt in range(1, self.max_attempts + 1):
            started = time.monotonic()
            try:
                data = self._attempt(scheme, host, action, params, expects, secrets)
            except _AttemptFailed as failed:
                self._log(action, params, attempt, started, failed.error)
                if failed.kind == "final":
                    raise failed.error from None
                if failed.kind == "ambiguous" and mutating:
                    raise _convert(OutcomeUnknown, failed.error) from None
                last = failed
                if attempt < self.max_attempts:
                    self._sleep(self._backoff(attempt, failed.retry_after))
                continue
            self._log(action, params, attempt, started, None)
            return data
        assert last is not None
        raise _convert(ApiUnreachable, last.error) from None

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Equal-jitter exponential backoff, never shorter than ``x-acs-retry-after``."""
        ceiling = min(self.backoff_base * 2 ** (attempt - 1), self.max_backoff)
        delay = ceiling / 2 + self._jitter() * ceiling / 2
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def _log(
        self,
        action: str,
        params: Mapping[str, str],
        attempt: int,
        started: float,
        error: AlibabaApiError | None,
    ) -> None:
        # Only the action, the instance and the outcome: never a parameter value.
        elapsed_ms = (time.monotonic() - started) * 1000
        if error is None:
            log.info(
                "kvstore %s instance=%s attempt=%d ok in %.0f ms",
                action, params.get("InstanceId", "-"), attempt, elapsed_ms,
            )  # fmt: skip
        else:
            log.warning(
                "kvstore %s instance=%s attempt=%d failed in %.0f ms: %s (http %s, request %s)",
                action, params.get("InstanceId", "-"), attempt, elapsed_ms,
                error.code, error.http_status, error.request_id,
            )  # fmt: skip

    @sensitive_variables()
    def _attempt(
        self,
        scheme: str,
        host: str,
        action: str,
        params: Mapping[str, str],
        expects: Callable[[dict[str, Any]], bool],
        secrets: Sequence[str],
    ) -> dict[str, Any]:
        body, headers = self._signed_request(host, action, params)
        guard = _DeadlineGuard(time.monotonic() + self.deadline)
        _watchdog.watch(guard)
        _local.guard = guard
        try:
            answer = self._exchange(f"{scheme}://{host}/", body, headers, guard, action)
        finally:
            _local.guard = None
            guard.finish()
        return _interpret(answer, action, expects, secrets, self.max_retry_after)

    @sensitive_variables()
    def _signed_request(
        self, host: str, action: str, params: Mapping[str, str]
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one attempt (a fresh nonce and date each time)."""
        common = {
            "accept": "application/json",
            "accept-encoding": "identity",
            "user-agent": USER_AGENT,
        }
        if self.signature_version == "v2":
            signed = signing.v2_signed_params(
                action=action,
                version=API_VERSION,
                params=params,
                access_key_id=self.access_key_id,
                access_key_secret=self._access_key_secret,
                security_token=self._security_token,
            )
            body = signing.form_encode(signed).encode()
            headers = {
                "host": host,
                "content-type": "application/x-www-form-urlencoded",
                **common,
            }
            return body, headers
        body = signing.form_encode(params).encode()
        headers = signing.v3_signed_headers(
            host=host,
            action=action,
            version=API_VERSION,
            body=body,
            access_key_id=self.access_key_id,
            access_key_secret=self._access_key_secret,
            security_token=self._security_token,
        )
        headers.update(common)
        return body, headers

    @sensitive_variables()
    def _exchange(
        self, url: str, body: bytes, headers: dict[str, str], guard: _DeadlineGuard, action: str
    ) -> _Answer:
        prepared = requests.PreparedRequest()
        prepared.prepare(method="POST", url=url, headers=headers, data=body)
        read_timeout = max(min(self.read_timeout, guard.deadline - time.monotonic()), 0.001)
        failure: _AttemptFailed | None = None
        try:
            response = (self._session or shared_session()).send(
                prepared,
                stream=True,
                timeout=(self.connect_timeout, read_timeout),
                allow_redirects=False,
                verify=True,
                proxies={},
                cert=None,
            )
        except requests.RequestException as exc:
            # Built here, raised below: the requests exception holds the prepared body.
            failure = _transport_failure(exc, guard, action)
        if failure is not None:
            raise failure
        try:
            content = _read_body(response, guard, action)
        except _AttemptFailed:
            response.close()
            raise
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            response.close()
            failure = _ambiguous(guard, errors.CONNECTION_LOST, action, response.status_code)
        if failure is not None:
            raise failure
        return _Answer(response.status_code, response.headers, content)


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


def _ambiguous(
    guard: _DeadlineGuard, code: str, action: str, http_status: int | None = None
) -> _AttemptFailed:
    if guard.expired():
        code, message = errors.TIMEOUT, "No complete answer before the deadline."
    elif code == errors.TIMEOUT:
        message = "No answer before the read timeout."
    else:
        message = "The connection broke after the request was sent."
    error = AlibabaApiError(code, message, http_status=http_status, action=action)
    return _AttemptFailed(error, "ambiguous")


def _transport_failure(
    exc: requests.RequestException, guard: _DeadlineGuard, action: str
) -> _AttemptFailed:
    if isinstance(exc, requests.exceptions.SSLError):
        error = ApiUnreachable(errors.TLS_ERROR, "TLS handshake failed.", action=action)
        return _AttemptFailed(error, "final")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        error = ApiUnreachable(errors.INVALID_ENDPOINT, "Invalid endpoint URL.", action=action)
        return _AttemptFailed(error, "final")
    if _is_not_sent(exc) and not guard.fired:
        error = AlibabaApiError(
            errors.CONNECTION_FAILED, "Could not connect to the API endpoint.", action=action
        )
        return _AttemptFailed(error, "retryable")
    if isinstance(exc, requests.ReadTimeout):
        return _ambiguous(guard, errors.TIMEOUT, action)
    return _ambiguous(guard, errors.CONNECTION_LOST, action)


def _read_body(response: requests.Response, guard: _DeadlineGuard, action: str) -> bytes:
    """Read in small pieces, one socket read at most each, checking the deadline."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if guard.expired():
            raise _ambiguous(guard, errors.TIMEOUT, action, response.status_code)
        chunk = response.raw.read1(READ_CHUNK, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            error = AlibabaApiError(
                errors.MALFORMED_RESPONSE,
                "The answer is too large.",
                http_status=response.status_code,
                action=action,
            )
            raise _AttemptFailed(error, "ambiguous")
        chunks.append(chunk)


def _decode(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _retry_after(headers: Mapping[str, str], cap: float) -> float | None:
    """``x-acs-retry-after`` is in milliseconds; a bogus or huge value is capped."""
    try:
        millis = float(headers.get("x-acs-retry-after", ""))
    except ValueError:
        return None
    if millis != millis or millis <= 0:  # NaN or not positive
        return None
    return min(millis / 1000, cap)


def _is_retryable(code: str, http_status: int) -> bool:
    # Only what cannot have created anything (docs/alibaba-api.md, "Retries").
    return (
        errors.is_throttling(code)
        or code in ("ServiceUnavailable", "InternalError")
        or http_status >= 500
    )


def _interpret(
    answer: _Answer,
    action: str,
    expects: Callable[[dict[str, Any]], bool],
    secrets: Sequence[str],
    retry_after_cap: float,
) -> dict[str, Any]:
    data = _decode(answer.body)
    if data is None:
        content_type = answer.headers.get("content-type") or "no content type"
        error = AlibabaApiError(
            errors.MALFORMED_RESPONSE,
            f"HTTP {answer.status} answer is not a JSON object ({content_type}, "
            f"{len(answer.body)} bytes).",
            http_status=answer.status,
            request_id=answer.headers.get("x-acs-request-id"),
            action=action,
        )
        raise _AttemptFailed(error, "ambiguous")
    code = data.get("Code")
    # Any body with a Code and no expected result is an error, whatever the status.
    if answer.status < 300 and (code is None or expects(data)):
        if expects(data):
            return data
        error = AlibabaApiError(
            errors.MALFORMED_RESPONSE,
            f"HTTP {answer.status} answer lacks the expected result.",
            http_status=answer.status,
            request_id=_text(data.get("RequestId")),
            action=action,
        )
        raise _AttemptFailed(error, "ambiguous")
    code, request_id = _text(code), _text(data.get("RequestId"))
    # A call that carried a password keeps no free text of its answer (an echo of the
    # password may be re-encoded past _scrub), and no field that echoes it.
    message = "" if secrets else _scrub(_text(data.get("Message")) or "", secrets)
    code = echo.REDACTED_CODE if echo.echoes(code, secrets) else code
    request_id = None if echo.echoes(request_id, secrets) else request_id
    error = AlibabaApiError(
        code or errors.MALFORMED_RESPONSE,
        message,
        http_status=answer.status,
        request_id=request_id,
        recommend=None if secrets else _text(data.get("Recommend")),
        action=action,
    )
    if not code:
        raise _AttemptFailed(error, "ambiguous")
    if error.code == "ServiceTimeout" or answer.status == 504:
        # A gateway timeout: the backend may have done the work (not a retry case).
        raise _AttemptFailed(error, "ambiguous")
    if _is_retryable(error.code, answer.status):
        retry_after = _retry_after(answer.headers, retry_after_cap)
        raise _AttemptFailed(error, "retryable", retry_after)
    raise _AttemptFailed(error, "final")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def get_client() -> KVStoreClient:
    """A client configured from Django settings (read at each call, so tests can override)."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    access_key_id = getattr(settings, "ALIBABA_CLOUD_ACCESS_KEY_ID", "") or ""
    access_key_secret = getattr(settings, "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "") or ""
    if not access_key_id or not access_key_secret:
        raise ImproperlyConfigured(
            "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET must be set to "
            "call the Alibaba Cloud API."
        )
    return KVStoreClient(
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
        security_token=getattr(settings, "ALIBABA_CLOUD_SECURITY_TOKEN", None) or None,
        endpoint=getattr(settings, "KVSTORE_ENDPOINT", None) or None,
        signature_version=(getattr(settings, "KVSTORE_SIGNATURE_VERSION", "v3") or "v3").lower(),
        connect_timeout=float(getattr(settings, "KVSTORE_CONNECT_TIMEOUT", 3.0)),
        read_timeout=float(getattr(settings, "KVSTORE_READ_TIMEOUT", 10.0)),
        deadline=float(getattr(settings, "KVSTORE_DEADLINE", 15.0)),
        max_attempts=int(getattr(settings, "KVSTORE_MAX_ATTEMPTS", 3)),
    )
