"""Transport for the R-KVStore API: sign one request, send it under a deadline, and
read the answer's envelope into a body or a typed error.

One attempt at a time: whether another may follow is the retry policy's business
(retry.py). The API facts relied on, with Alibaba's pages: docs/alibaba-api.md.

- Every parameter, ``AccountPassword`` included, travels in the form-encoded POST body;
  the URL is always ``/``.
- Neither the secret, the STS token nor a password appears in a log line, an exception
  (message, ``repr`` or chained cause) or a ``repr``; functions that hold them are marked
  with ``sensitive_variables()`` so Django's error reports hide their locals.
- Each attempt has a wall-clock deadline: the body is read in small pieces with the
  deadline checked between them, and a watchdog shuts the socket down if a server keeps
  the call blocked (headers or body dripping one byte at a time) past it.
"""

from __future__ import annotations

import heapq
import itertools
import json
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
from .errors import AlibabaApiError, ApiUnreachable

API_VERSION = "2015-01-01"
# The newest SDK maps only cn-hangzhou to the central host (docs/alibaba-api.md, "Endpoints").
CENTRAL_ENDPOINT = "r-kvstore.aliyuncs.com"
MAX_BODY_BYTES = 4 * 1024 * 1024
READ_CHUNK = 64 * 1024
USER_AGENT = "kvstore-accounts-dashboard/1.0"
_REGION_RE = re.compile(r"[a-z]{2}(?:-[a-z0-9]+)+")
# The V2 gateway appends its own StringToSign to SignatureDoesNotMatch; that string
# contains every parameter, a password included, so it never leaves this module.
_STRING_TO_SIGN_MARKER = " server string to sign is:"

# How far one failed attempt got; retry.py decides what each means:
# "not_sent": the request certainly never left (refused, connect timeout, DNS);
# "unusable": the endpoint cannot be used at all (TLS, a bad URL);
# "unclear": it may have arrived and no clear answer came back;
# "answered": the API answered with an error code.
Stage = Literal["not_sent", "unusable", "unclear", "answered"]


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


class AttemptFailed(Exception):
    """One attempt failed; ``stage`` says how far it got, ``retry_after`` (seconds) is
    what the API asked for, if it did."""

    def __init__(self, error: AlibabaApiError, stage: Stage, retry_after: float | None = None):
        super().__init__(error.code)
        self.error = error
        self.stage = stage
        self.retry_after = retry_after


def _is_not_sent(exc: requests.RequestException) -> bool:
    """True when the request certainly never left: connect timeout, refused, DNS."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


def scrub(text: str, secrets: Sequence[str]) -> str:
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


# --- One attempt ------------------------------------------------------------------------------


class Transport:
    """Signs and sends one request to the endpoint of its region (or the override)."""

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        security_token: str | None,
        endpoint: str | None,
        signature_version: str,
        connect_timeout: float,
        read_timeout: float,
        deadline: float,
        session: requests.Session | None = None,
    ) -> None:
        if not access_key_id or not access_key_secret:
            raise ValueError("An AccessKey ID and secret are required.")
        if signature_version not in ("v3", "v2"):
            raise ValueError("signature_version must be 'v3' or 'v2'.")
        if min(connect_timeout, read_timeout, deadline) <= 0:
            raise ValueError("Timeouts must be positive.")
        self.access_key_id = access_key_id
        self._access_key_secret = access_key_secret
        self._security_token = security_token or None
        self.endpoint = parse_endpoint(endpoint) if endpoint else None
        self.signature_version = signature_version
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.deadline = deadline
        self._session = session

    def __repr__(self) -> str:
        endpoint = "://".join(self.endpoint) if self.endpoint else "per-region"
        return (
            f"Transport(access_key_id={self.access_key_id[:4]!r}+'***', "
            f"access_key_secret='***', security_token={'***' if self._security_token else None}, "
            f"endpoint={endpoint!r}, signature_version={self.signature_version!r})"
        )

    @sensitive_variables()
    def send(
        self,
        action: str,
        region_id: str,
        params: Mapping[str, str],
        *,
        expects: Callable[[dict[str, Any]], bool],
        secrets: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The answer's body, or AttemptFailed."""
        scheme, host = self.endpoint or ("https", endpoint_for_region(region_id))
        body, headers = self._signed_request(host, action, params)
        guard = _DeadlineGuard(time.monotonic() + self.deadline)
        _watchdog.watch(guard)
        _local.guard = guard
        try:
            answer = self._exchange(f"{scheme}://{host}/", body, headers, guard, action)
        finally:
            _local.guard = None
            guard.finish()
        return _interpret(answer, action, expects, secrets)

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
        failure: AttemptFailed | None = None
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
        except AttemptFailed:
            response.close()
            raise
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            response.close()
            failure = _ambiguous(guard, errors.CONNECTION_LOST, action, response.status_code)
        if failure is not None:
            raise failure
        return _Answer(response.status_code, response.headers, content)


def _ambiguous(
    guard: _DeadlineGuard, code: str, action: str, http_status: int | None = None
) -> AttemptFailed:
    if guard.expired():
        code, message = errors.TIMEOUT, "No complete answer before the deadline."
    elif code == errors.TIMEOUT:
        message = "No answer before the read timeout."
    else:
        message = "The connection broke after the request was sent."
    error = AlibabaApiError(code, message, http_status=http_status, action=action)
    return AttemptFailed(error, "unclear")


def _transport_failure(
    exc: requests.RequestException, guard: _DeadlineGuard, action: str
) -> AttemptFailed:
    if isinstance(exc, requests.exceptions.SSLError):
        error = ApiUnreachable(errors.TLS_ERROR, "TLS handshake failed.", action=action)
        return AttemptFailed(error, "unusable")
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        error = ApiUnreachable(errors.INVALID_ENDPOINT, "Invalid endpoint URL.", action=action)
        return AttemptFailed(error, "unusable")
    if _is_not_sent(exc) and not guard.fired:
        error = AlibabaApiError(
            errors.CONNECTION_FAILED, "Could not connect to the API endpoint.", action=action
        )
        return AttemptFailed(error, "not_sent")
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
            raise AttemptFailed(error, "unclear")
        chunks.append(chunk)


def _decode(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """``x-acs-retry-after`` is in milliseconds; a bogus value is ignored."""
    try:
        millis = float(headers.get("x-acs-retry-after", ""))
    except ValueError:
        return None
    if millis != millis or millis <= 0:  # NaN or not positive
        return None
    return millis / 1000


def _interpret(
    answer: _Answer,
    action: str,
    expects: Callable[[dict[str, Any]], bool],
    secrets: Sequence[str],
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
        raise AttemptFailed(error, "unclear")
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
        raise AttemptFailed(error, "unclear")
    code, request_id = _text(code), _text(data.get("RequestId"))
    # A call that carried a password keeps no free text of its answer (an echo of the
    # password may be re-encoded past scrub()), and no field that echoes it.
    message = "" if secrets else scrub(_text(data.get("Message")) or "", secrets)
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
        raise AttemptFailed(error, "unclear")
    raise AttemptFailed(error, "answered", _retry_after(answer.headers))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
