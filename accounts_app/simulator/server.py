"""A local stand-in for Alibaba Cloud's R-KVStore API (2015-01-01), stdlib only.

Speaks the wire protocol docs/alibaba-api.md describes: RPC-style calls
``POST`` (or ``GET``) to ``/`` with parameters in the query string and/or a form body,
signed with V3 (``ACS3-HMAC-SHA256``) or V2 (``HMAC-SHA1``), verified against the one
access key pair it was started with. Alibaba's official SDKs work against it unchanged.

Operations: CreateAccount, DescribeAccounts, DescribeInstances (RegionId, InstanceIds,
InstanceStatus, PageNumber, PageSize up to 50; the only one with EditionType),
DescribeInstanceAttribute (with VpcAuthMode, no EditionType; an empty list for an
unknown instance), DeleteAccount, ResetAccountPassword and GrantAccountPrivilege.
Gateway errors: MissingParameter, IncompleteSignature, SignatureDoesNotMatch (V2 with
the " server string to sign is:..." suffix), InvalidTimeStamp.Expired/.Format (15
minutes), SignatureNonceUsed, InvalidAccessKeyId.NotFound, InvalidVersion,
InvalidAction.NotFound. Every answer has a ``RequestId`` (an upper-case UUID); V3 answers
and V2 answers with ``Format=JSON`` are JSON, other V2 answers XML (the gateway's
default). STS tokens (``x-acs-security-token`` / ``SecurityToken``) are accepted and
recorded (hashed), not validated.

New accounts are ``Unavailable`` for ``activation_delay`` seconds (``--activation-seconds``,
60 by default, like the real service), then ``Available``; meanwhile the instance refuses
the next CreateAccount with ``IncorrectDBInstanceState``. DescribeAccounts lists the
built-in ``Super`` accounts; they are not counted in the limit of 18 and cannot be
deleted, reset or re-privileged (``IncorrectAccount``). DescribeAccounts of an engine
older than 4.0 answers ``InvalidEngineVersion.Format``.
No password is ever kept: not in the state file, the call log, or a log line.

Control API (JSON, same server, under ``/_simulator/``; no authentication, so bind it to
loopback only):

``GET /_simulator/health``
    ``{"ok": true}``.
``POST /_simulator/faults``
    Add a fault: ``{"mode": M, "action": "CreateAccount" (optional, any action if absent),
    "instance_id": "r-..." (optional; matches InstanceId or an entry of InstanceIds),
    "count": N (calls it applies to, default 1; 0 = until cleared), "delay": seconds
    (optional), "retry_after_ms": ms (throttle only: sets ``x-acs-retry-after``), "code":
    an Alibaba code (mode ``error`` only)}``.
    Answers 201 with the fault. Modes, applied after the signature is verified:

    - ``throttle``: 400 ``Throttling.User``; nothing done.
    - ``http500`` / ``http503``: 500 ``InternalError`` / 503 ``ServiceUnavailable``; nothing done.
    - ``html``: 502 with an HTML page, as a proxy would answer; nothing done.
    - ``reset``: reads the request, then resets the connection (RST); nothing done.
    - ``slow``: waits ``delay`` (default 2 s), then does the call and answers.
    - ``drip``: does the call, sends the headers, then the body one byte per ``delay``
      (default 0.2 s).
    - ``drip_headers``: does the call, then sends the whole answer, status line and
      headers included, one byte per ``delay``.
    - ``commit_then_timeout``: does the call, then waits ``delay`` (default 30 s) before
      answering, longer than any sane client timeout.
    - ``malformed``: does the call, then answers 200 with a truncated JSON body.
    - ``error``: answers the Alibaba error ``code`` (one the simulator knows, with its
      status and message, e.g. ``OperationDeniedDBStatus``, ``LockTimeout``,
      ``Rejected.Throttling``); nothing done.
``GET /_simulator/faults`` / ``DELETE /_simulator/faults``
    List / clear the faults.
``GET /_simulator/calls[?action=CreateAccount]`` / ``DELETE /_simulator/calls``
    The call log, oldest first: ``seq``, ``time``, ``method``, ``path`` (never the query),
    ``query_keys`` and ``body_keys`` (which parameters came in the URL and which in the
    body), ``signature_version``, ``action``, ``instance_id``, ``params`` (with
    ``AccountPassword`` replaced by ``AccountPasswordSha256`` and ``SecurityToken`` by
    ``SecurityTokenSha256``), ``security_token_sha256``, ``http_status``, ``code`` (null on
    success), ``request_id``, ``fault``, ``committed`` (the call changed state),
    ``elapsed_ms``.
``GET /_simulator/state``
    Instances and accounts.
``POST /_simulator/reset``
    Back to the demo estate; clears faults, calls and used nonces.
``POST /_simulator/instances``
    Add or replace an instance: API field names, ``InstanceId`` and ``RegionId`` required,
    the rest defaulted (``EngineVersion`` 6.0, standard, Normal).
``POST /_simulator/accounts``
    Add an account directly: ``InstanceId``, ``AccountName``, optional ``AccountPrivilege``,
    ``AccountType``, ``AccountDescription``, ``AccountStatus`` (``Available`` by default).
``POST /_simulator/config``
    ``{"activation_seconds": seconds}`` (``activation_delay`` is the older name).

Run it with ``python manage.py kvstore_simulator`` or ``python -m
accounts_app.simulator.server`` (``--help`` for the flags).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import hmac
import json
import logging
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import checks
from .checks import ApiError
from .demo_estate import demo_estate, make_account, make_instance
from .state import StateStore

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_simulator/"
MAX_BODY_BYTES = 1024 * 1024
CALL_LOG_SIZE = 10_000
NONCE_TTL_SECONDS = checks.TIMESTAMP_TOLERANCE_SECONDS
DEFAULT_ACTIVATION_DELAY = 60.0  # about a minute, like the real service
NEVER = 4102444800.0  # 2100-01-01: an account set up as Unavailable stays so

FAULT_MODES = (
    "throttle",
    "http500",
    "http503",
    "html",
    "reset",
    "slow",
    "drip",
    "drip_headers",
    "commit_then_timeout",
    "malformed",
    "error",
)
DEFAULT_FAULT_DELAYS = {"slow": 2.0, "drip": 0.2, "drip_headers": 0.2, "commit_then_timeout": 30.0}
MUTATING_ACTIONS = frozenset(
    {"CreateAccount", "DeleteAccount", "ResetAccountPassword", "GrantAccountPrivilege"}
)
V3_REQUIRED_HEADERS = (
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
)
V2_REQUIRED_PARAMS = (
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
    "Action",
    "Version",
)
HTML_ERROR_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>Tengine</center></body></html>"
)


def sha256_text(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- Requests, replies, faults ---------------------------------------------------------------


@dataclass
class IncomingRequest:
    method: str
    path: str
    query_string: str
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json;charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    delay_before_send: float = 0.0
    drip_interval: float | None = None
    drip_headers: bool = False


@dataclass
class Fault:
    id: int
    mode: str
    action: str | None = None
    instance_id: str | None = None
    count: int = 1  # 0: until cleared
    delay: float | None = None
    retry_after_ms: int | None = None
    used: int = 0
    code: str | None = None  # mode "error": the Alibaba code to answer

    def matches(self, action: str, params: Mapping[str, str]) -> bool:
        if self.action and self.action != action:
            return False
        if self.instance_id:
            ids = [*params.get("InstanceIds", "").split(","), params.get("InstanceId", "")]
            return self.instance_id in (i.strip() for i in ids)
        return True

    @property
    def exhausted(self) -> bool:
        return self.count > 0 and self.used >= self.count

    def wait(self) -> float:
        return self.delay if self.delay is not None else DEFAULT_FAULT_DELAYS.get(self.mode, 0.0)


@dataclass
class Authenticated:
    action: str
    params: dict[str, str]
    signature_version: str
    security_token: str | None


def json_reply(status: int, payload: Mapping[str, Any], **headers: str) -> Reply:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Reply(status, body, headers=dict(headers))


def redact_params(params: Mapping[str, str]) -> dict[str, str]:
    """Parameters as the call log keeps them: no password, no STS token."""
    kept = {}
    for key, value in params.items():
        if key == "AccountPassword":
            kept["AccountPasswordSha256"] = sha256_text(value)
        elif key == "SecurityToken":
            kept["SecurityTokenSha256"] = sha256_text(value)
        else:
            kept[key] = value
    return kept


# --- The simulated service -------------------------------------------------------------------


class Simulator:
    """The API's behaviour, independent of HTTP: requests in, replies out."""

    def __init__(
        self,
        *,
        state_path: Path | str | None,
        access_key_id: str,
        access_key_secret: str,
        activation_delay: float = DEFAULT_ACTIVATION_DELAY,
        clock: Callable[[], float] = time.time,
        fsync: bool = True,
    ) -> None:
        if not access_key_id or not access_key_secret:
            raise ValueError("The simulator needs an access key pair to verify signatures.")
        self.store = StateStore(Path(state_path) if state_path else None, demo_estate, fsync=fsync)
        self.access_key_id = access_key_id
        self._keys = {access_key_id: access_key_secret}
        self.activation_delay = activation_delay
        self.clock = clock
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._fault_ids = 0
        self._calls: deque[dict[str, Any]] = deque(maxlen=CALL_LOG_SIZE)
        self._call_seq = 0
        self._nonces: dict[tuple[str, str], float] = {}

    def __repr__(self) -> str:
        return f"Simulator(access_key_id={self.access_key_id!r}, state={self.store.path})"

    # --- Test and demo controls ----------------------------------------------------------

    def add_fault(
        self,
        mode: str,
        *,
        action: str | None = None,
        instance_id: str | None = None,
        count: int = 1,
        delay: float | None = None,
        retry_after_ms: int | None = None,
        code: str | None = None,
    ) -> Fault:
        if mode not in FAULT_MODES:
            raise ValueError(f"Unknown fault mode {mode!r}; one of {', '.join(FAULT_MODES)}.")
        if (mode == "error") != (code is not None) or (code and code not in checks.ERRORS):
            raise ValueError("Mode 'error', and only it, takes a known Alibaba code.")
        if count < 0:
            raise ValueError("count must be 0 (until cleared) or more.")
        with self._lock:
            self._fault_ids += 1
            fault = Fault(
                self._fault_ids, mode, action, instance_id, count, delay, retry_after_ms, code=code
            )
            self._faults.append(fault)
            return fault

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(fault) for fault in self._faults]

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def calls(self, action: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(c) for c in self._calls if action is None or c["action"] == action
            ]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._calls.clear()
            self._nonces.clear()
        self.store.reset()

    def add_instance(self, **fields: Any) -> dict[str, Any]:
        """Add or replace an instance; API field names, defaults for the rest."""
        if not fields.get("InstanceId") or not fields.get("RegionId"):
            raise ValueError("InstanceId and RegionId are required.")
        base = make_instance(
            fields["InstanceId"],
            fields.get("InstanceName", fields["InstanceId"]),
            fields["RegionId"],
            fields.get("ZoneId", f"{fields['RegionId']}-a"),
            fields.get("EngineVersion", "6.0"),
            fields.get("ArchitectureType", "standard"),
        )
        base.update(fields)
        self.store.put_instance(base)
        return base

    def add_account(
        self,
        *,
        instance_id: str,
        account_name: str,
        privilege: str = "RoleReadWrite",
        account_type: str = "Normal",
        description: str = "",
        status: str = "Available",
    ) -> dict[str, Any]:
        """Add an account directly, bypassing the API's checks (to set up a scenario)."""
        if self.store.instance(instance_id) is None:
            raise ValueError(f"No instance {instance_id}.")
        available_at = 0.0 if status == "Available" else NEVER
        account = make_account(
            instance_id, account_name, privilege, description,
            account_type=account_type, available_at=available_at,
        )  # fmt: skip
        self.store.add_account(instance_id, account)
        return account

    def accounts(self, instance_id: str) -> list[dict[str, Any]]:
        """DescribeAccounts' view of an instance's accounts, status included."""
        return [self._account_view(a, instance_id) for a in self.store.accounts(instance_id)]

    # --- The API -------------------------------------------------------------------------

    def handle_api(self, request: IncomingRequest) -> Reply:
        started = time.perf_counter()
        request_id = str(uuid.uuid4()).upper()
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "signature_version": None,
            "action": None,
            "instance_id": None,
            "params": {},
            "query_keys": [],
            "body_keys": [],
            "security_token_sha256": None,
            "fault": None,
            "committed": False,
            "request_id": request_id,
            "http_status": None,  # filled in when the answer is ready
            "code": None,
        }
        # Logged on arrival, so a call still being served (a slow fault) is already visible.
        self._record_arrival(entry)
        reply: Reply | None = None
        xml_root: str | None = None
        try:
            query, body = self._parameters(request)
            # Recorded before authentication too, so a refused call still shows what it was.
            merged = {**query, **body}
            if _wants_xml(request, merged):
                xml_root = f"{merged.get('Action', '')}Response"
            entry.update(
                query_keys=sorted(query),
                body_keys=sorted(body),
                action=request.header("x-acs-action") or merged.get("Action"),
                instance_id=merged.get("InstanceId"),
                params=redact_params(merged),
            )
            call = self._authenticate(request, query, body)
            entry.update(
                signature_version=call.signature_version,
                action=call.action,
                security_token_sha256=sha256_text(call.security_token)
                if call.security_token
                else None,
            )
            fault = self._take_fault(call.action, call.params)
            entry["fault"] = fault.mode if fault else None
            reply = self._answer(call, fault, request_id, entry)
        except ApiError as error:
            reply = self._error_reply(error, request_id, request.header("host") or "")
        except Exception as bug:  # a simulator defect must still answer like the gateway
            # Only the type: an exception's text could quote a parameter value.
            log.error("simulator error %s while handling %s", type(bug).__name__, entry["action"])
            reply = self._error_reply(checks.error("InternalError"), request_id, "")
        finally:
            self._record(entry, reply, started)
        return _as_xml(reply, xml_root) if xml_root else reply

    def _answer(
        self, call: Authenticated, fault: Fault | None, request_id: str, entry: dict[str, Any]
    ) -> Reply:
        if fault is not None:
            early = self._fault_before(fault, request_id)
            if early is not None:
                return early
        data = self._dispatch(call.action, call.params)
        entry["committed"] = call.action in MUTATING_ACTIONS
        reply = json_reply(200, {"RequestId": request_id, **data})
        reply.headers["x-acs-request-id"] = request_id
        if fault is not None:
            self._fault_after(fault, reply)
        return reply

    def _fault_before(self, fault: Fault, request_id: str) -> Reply | None:
        """Faults that answer instead of doing the call (or wait before doing it)."""
        if fault.mode == "throttle":
            reply = self._error_reply(checks.error("Throttling.User"), request_id, "")
            if fault.retry_after_ms is not None:
                reply.headers["x-acs-retry-after"] = str(fault.retry_after_ms)
            return reply
        if fault.mode in ("http500", "http503"):
            code = "InternalError" if fault.mode == "http500" else "ServiceUnavailable"
            return self._error_reply(checks.error(code), request_id, "")
        if fault.mode == "error" and fault.code:
            return self._error_reply(checks.error(fault.code), request_id, "")
        if fault.mode == "html":
            return Reply(502, HTML_ERROR_PAGE, content_type="text/html")
        if fault.mode == "reset":
            return Reply(0, b"", reset=True)
        if fault.mode == "slow" and self.stop_event.wait(fault.wait()):
            return Reply(0, b"", reset=True)
        return None

    def _fault_after(self, fault: Fault, reply: Reply) -> None:
        """Faults that damage the answer of a call already done."""
        if fault.mode == "drip":
            reply.drip_interval = fault.wait()
        elif fault.mode == "drip_headers":
            reply.drip_interval, reply.drip_headers = fault.wait(), True
        elif fault.mode == "commit_then_timeout":
            reply.delay_before_send = fault.wait()
        elif fault.mode == "malformed":
            reply.body = reply.body[: max(len(reply.body) // 2, 1)]

    def _take_fault(self, action: str, params: Mapping[str, str]) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(action, params):
                    fault.used += 1
                    if fault.exhausted:
                        self._faults.remove(fault)
                    return fault
        return None

    def _record_arrival(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._call_seq += 1
            entry["seq"] = self._call_seq
            entry["time"] = datetime.now(UTC).isoformat(timespec="milliseconds")
            self._calls.append(entry)

    def _record(self, entry: dict[str, Any], reply: Reply | None, started: float) -> None:
        status = reply.status if reply is not None else 500
        code = None
        if (
            reply is not None
            and status >= 400
            and reply.content_type.startswith("application/json")
        ):
            code = json.loads(reply.body).get("Code")
        with self._lock:
            entry["http_status"] = status
            entry["code"] = code
            entry["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 3)
        # Only the action, instance and outcome: never a parameter value.
        log.info(
            "%s %s instance=%s -> %s %s%s",
            entry["signature_version"] or "-",
            entry["action"] or "-",
            entry["instance_id"] or "-",
            "reset" if reply is not None and reply.reset else status,
            code or "OK",
            f" [fault {entry['fault']}]" if entry["fault"] else "",
        )

    def _error_reply(self, error: ApiError, request_id: str, host: str) -> Reply:
        payload = {
            "RequestId": request_id,
            "HostId": host or "r-kvstore.aliyuncs.com",
            "Code": error.code,
            "Message": error.message,
            "Recommend": (
                f"https://api.aliyun.com/troubleshoot?q={error.code}&product=R-kvstore"
                f"&requestId={request_id}"
            ),
        }
        return json_reply(error.http_status, payload, **{"x-acs-request-id": request_id})

    # --- Parameters and signatures -------------------------------------------------------

    @staticmethod
    def _parameters(request: IncomingRequest) -> tuple[dict[str, str], dict[str, str]]:
        query = dict(parse_qsl(request.query_string, keep_blank_values=True))
        body: dict[str, str] = {}
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if request.body and content_type == "application/x-www-form-urlencoded":
            try:
                text = request.body.decode("utf-8")
            except UnicodeDecodeError:
                raise checks.invalid_parameter("body") from None
            body = dict(parse_qsl(text, keep_blank_values=True))
        return query, body

    def _authenticate(
        self, request: IncomingRequest, query: dict[str, str], body: dict[str, str]
    ) -> Authenticated:
        authorization = request.header("authorization") or ""
        if authorization.startswith("ACS3-"):
            return self._authenticate_v3(request, authorization, query, body)
        return self._authenticate_v2(request, {**query, **body})

    def _authenticate_v3(
        self,
        request: IncomingRequest,
        authorization: str,
        query: dict[str, str],
        body: dict[str, str],
    ) -> Authenticated:
        # docs/alibaba-api.md, "Signing", V3. Checks in the gateway's order: shape, key,
        # time, signature, nonce.
        for name in V3_REQUIRED_HEADERS:
            if not request.header(name):
                raise checks.missing_parameter(name)
        auth = checks.parse_v3_authorization(authorization)
        secret = self._secret_for(auth.access_key_id)
        checks.check_fresh(request.header("x-acs-date") or "", self._now())
        self._check_v3_signature(request, auth, query, secret)
        self._use_nonce(auth.access_key_id, request.header("x-acs-signature-nonce") or "")
        if request.header("x-acs-version") != checks.API_VERSION:
            raise checks.error("InvalidVersion")
        return Authenticated(
            action=request.header("x-acs-action") or "",
            params={**query, **body},
            signature_version="v3",
            security_token=request.header("x-acs-security-token"),
        )

    def _check_v3_signature(
        self,
        request: IncomingRequest,
        auth: checks.V3Authorization,
        query: dict[str, str],
        secret: str,
    ) -> None:
        signed = auth.signed_headers
        present_acs = {
            name.lower() for name in request.headers if name.lower().startswith("x-acs-")
        }
        if "host" not in signed or not present_acs <= set(signed) or list(signed) != sorted(signed):
            raise checks.signature_does_not_match()
        declared_hash = (request.header("x-acs-content-sha256") or "").lower()
        if not hmac.compare_digest(declared_hash, hashlib.sha256(request.body).hexdigest()):
            raise checks.signature_does_not_match()
        values = {}
        for name in signed:
            received = request.headers.get_all(name)
            if received is None:
                raise checks.signature_does_not_match()
            values[name] = ",".join(sorted(value.strip() for value in received))
        expected = checks.v3_expected_signature(
            method=request.method,
            path=request.path,
            query=query,
            header_values=values,
            signed_headers=signed,
            payload_hash=declared_hash,
            secret=secret,
        )
        if not hmac.compare_digest(expected, auth.signature):
            raise checks.signature_does_not_match()

    def _authenticate_v2(self, request: IncomingRequest, params: dict[str, str]) -> Authenticated:
        # docs/alibaba-api.md, "Signing", V2.
        for name in V2_REQUIRED_PARAMS:
            if name not in params:
                raise checks.missing_parameter(name)
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            raise checks.invalid_parameter("SignatureMethod")
        secret = self._secret_for(params["AccessKeyId"])
        checks.check_fresh(params["Timestamp"], self._now())
        string_to_sign = checks.v2_string_to_sign(request.method, params)
        expected = checks.v2_expected_signature(string_to_sign, secret)
        if not hmac.compare_digest(expected.encode(), params["Signature"].encode()):
            raise checks.signature_does_not_match(string_to_sign)
        self._use_nonce(params["AccessKeyId"], params["SignatureNonce"])
        if params["Version"] != checks.API_VERSION:
            raise checks.error("InvalidVersion")
        return Authenticated(
            action=params["Action"],
            params=params,
            signature_version="v2",
            security_token=params.get("SecurityToken"),
        )

    def _secret_for(self, access_key_id: str) -> str:
        secret = self._keys.get(access_key_id)
        if secret is None:
            raise checks.error("InvalidAccessKeyId.NotFound")
        return secret

    def _use_nonce(self, access_key_id: str, nonce: str) -> None:
        now = self.clock()
        with self._lock:
            key = (access_key_id, nonce)
            if key in self._nonces and self._nonces[key] > now:
                raise checks.error("SignatureNonceUsed")
            if len(self._nonces) > 50_000:
                self._nonces = {k: v for k, v in self._nonces.items() if v > now}
            self._nonces[key] = now + NONCE_TTL_SECONDS

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- Operations ----------------------------------------------------------------------

    def _dispatch(self, action: str, params: dict[str, str]) -> dict[str, Any]:
        operations: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "CreateAccount": self._create_account,
            "DeleteAccount": self._delete_account,
            "DescribeAccounts": self._describe_accounts,
            "DescribeInstances": self._describe_instances,
            "DescribeInstanceAttribute": self._describe_instance_attribute,
            "ResetAccountPassword": self._reset_account_password,
            "GrantAccountPrivilege": self._grant_account_privilege,
        }
        operation = operations.get(action)
        if operation is None:
            raise checks.error("InvalidAction.NotFound")
        return operation(params)

    @staticmethod
    def _require(params: Mapping[str, str], name: str) -> str:
        value = params.get(name)
        if not value:
            raise checks.missing_parameter(name)
        return value

    def _instance(self, params: Mapping[str, str]) -> dict[str, Any]:
        instance = self.store.instance(self._require(params, "InstanceId"))
        region_id = params.get("RegionId")
        # An instance of another region is as unknown as a missing one.
        if instance is None or (region_id and region_id != instance["RegionId"]):
            raise checks.error("InvalidInstanceId.NotFound")
        return instance

    def _create_account(self, params: dict[str, str]) -> dict[str, Any]:
        # Parameter formats first, then the instance's state (docs/alibaba-api.md).
        instance_id = self._require(params, "InstanceId")
        name = self._require(params, "AccountName")
        password = self._require(params, "AccountPassword")
        privilege = params.get("AccountPrivilege") or "RoleReadWrite"
        description = params.get("AccountDescription") or ""
        checks.check_account_name(name)
        checks.check_account_password(password)
        checks.check_account_privilege(privilege)
        if description:
            checks.check_account_description(description)
        checks.check_account_type(params.get("AccountType") or "Normal")
        with self.store.lock:
            instance = self._instance(params)
            checks.check_instance_accepts_accounts(instance)
            checks.check_privilege_on_instance(privilege, instance)
            existing = self.store.accounts(instance_id)
            if any(self.clock() < account["AvailableAt"] for account in existing):
                # The previous account is still being created: the instance is busy.
                raise checks.error("IncorrectDBInstanceState")
            checks.check_room_for(name, existing)
            account = make_account(
                instance_id, name, privilege, description,
                available_at=self.clock() + self.activation_delay,
            )  # fmt: skip
            self.store.add_account(instance_id, account)
        # "AcountName" is the API's historical misspelling; newer answers carry both.
        return {"InstanceId": instance_id, "AcountName": name, "AccountName": name}

    def _delete_account(self, params: dict[str, str]) -> dict[str, Any]:
        name = self._require(params, "AccountName")
        with self.store.lock:
            instance = self._instance(params)
            if instance["InstanceStatus"] != "Normal":
                raise checks.error("IncorrectDBInstanceState")
            accounts = {a["AccountName"]: a for a in self.store.accounts(instance["InstanceId"])}
            if name not in accounts:
                raise checks.error("InvalidAccountName.NotFound")
            checks.check_changeable(accounts[name])
            if self.clock() < accounts[name]["AvailableAt"]:
                raise checks.error("OperationDenied.AccountStatus")
            self.store.remove_account(instance["InstanceId"], name)
        return {}

    def _changeable_account(self, params: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
        name = self._require(params, "AccountName")
        instance = self._instance(params)
        if not checks.accounts_supported(instance):
            raise checks.error("InvalidEngineVersion.Format")
        accounts = {a["AccountName"]: a for a in self.store.accounts(instance["InstanceId"])}
        if name not in accounts:
            raise checks.error("InvalidAccountName.NotFound")
        checks.check_changeable(accounts[name])
        return instance["InstanceId"], accounts[name]

    def _reset_account_password(self, params: dict[str, str]) -> dict[str, Any]:
        checks.check_account_password(self._require(params, "AccountPassword"))
        with self.store.lock:
            self._changeable_account(params)
        return {}

    def _grant_account_privilege(self, params: dict[str, str]) -> dict[str, Any]:
        privilege = self._require(params, "AccountPrivilege")
        if privilege not in ("RoleReadOnly", "RoleReadWrite"):
            raise checks.error("InvalidAccountPrivilege.Format")
        with self.store.lock:
            instance_id, account = self._changeable_account(params)
            name = account["AccountName"]
            self.store.update_account(instance_id, name, AccountPrivilege=privilege)
        return {}

    def _describe_accounts(self, params: dict[str, str]) -> dict[str, Any]:
        instance = self._instance(params)
        if not checks.accounts_supported(instance):
            raise checks.error("InvalidEngineVersion.Format")
        wanted = params.get("AccountName")
        accounts = [
            self._account_view(account, instance["InstanceId"])
            for account in self.store.accounts(instance["InstanceId"])
            if not wanted or account["AccountName"] == wanted
        ]
        return {"Accounts": {"Account": accounts}}

    def _account_view(self, account: Mapping[str, Any], instance_id: str) -> dict[str, Any]:
        available = self.clock() >= account["AvailableAt"]
        return {
            "AccountName": account["AccountName"],
            "AccountStatus": "Available" if available else "Unavailable",
            "AccountType": account["AccountType"],
            "AccountDescription": account["AccountDescription"],
            "InstanceId": instance_id,
            "DatabasePrivileges": {
                "DatabasePrivilege": [{"AccountPrivilege": account["AccountPrivilege"]}]
            },
        }

    def _describe_instances(self, params: dict[str, str]) -> dict[str, Any]:
        region_id = self._require(params, "RegionId")
        items = [i for i in self.store.instances() if i["RegionId"] == region_id]
        if params.get("InstanceIds"):
            wanted = [i.strip() for i in params["InstanceIds"].split(",") if i.strip()]
            if len(wanted) > 30:
                raise checks.invalid_parameter("InstanceIds")
            items = [i for i in items if i["InstanceId"] in wanted]
        if params.get("InstanceStatus"):
            items = [i for i in items if i["InstanceStatus"] == params["InstanceStatus"]]
        page_number = _int_param(params, "PageNumber", default=1, low=1, high=10**6)
        page_size = _int_param(params, "PageSize", default=30, low=1, high=50)
        page = items[(page_number - 1) * page_size : page_number * page_size]
        # DescribeInstances does not report VpcAuthMode; DescribeInstanceAttribute does.
        summaries = [{k: v for k, v in i.items() if k != "VpcAuthMode"} for i in page]
        return {
            "Instances": {"KVStoreInstance": summaries},
            "TotalCount": len(items),
            "PageNumber": page_number,
            "PageSize": page_size,
        }

    def _describe_instance_attribute(self, params: dict[str, str]) -> dict[str, Any]:
        # No EditionType here (only DescribeInstances has it), and an unknown instance is
        # an empty list, not an error.
        try:
            instance = self._instance(params)
        except ApiError as error:
            if error.code != "InvalidInstanceId.NotFound":
                raise
            return {"Instances": {"DBInstanceAttribute": []}}
        attribute = {k: v for k, v in instance.items() if k != "EditionType"}
        return {"Instances": {"DBInstanceAttribute": [attribute]}}

    # --- Control API ---------------------------------------------------------------------

    def handle_control(self, method: str, path: str, query: str, body: bytes) -> Reply:
        route = path[len(CONTROL_PREFIX) :].strip("/")
        try:
            payload = json.loads(body) if body else {}
            if not isinstance(payload, dict):
                raise ValueError("The body must be a JSON object.")
            return self._control(method, route, dict(parse_qsl(query)), payload)
        except (ValueError, TypeError, KeyError) as problem:
            return json_reply(400, {"error": str(problem)})

    def _control(
        self, method: str, route: str, query: dict[str, str], payload: dict[str, Any]
    ) -> Reply:
        if (method, route) == ("GET", "health"):
            return json_reply(200, {"ok": True})
        if route == "faults":
            return self._control_faults(method, payload)
        if route == "calls" and method == "GET":
            return json_reply(200, {"calls": self.calls(query.get("action"))})
        if route == "calls" and method == "DELETE":
            self.clear_calls()
            return json_reply(200, {"ok": True})
        if (method, route) == ("GET", "state"):
            return json_reply(200, self.store.snapshot())
        if (method, route) == ("POST", "reset"):
            self.reset()
            return json_reply(200, {"ok": True})
        if (method, route) == ("POST", "instances"):
            return json_reply(201, {"instance": self.add_instance(**payload)})
        if (method, route) == ("POST", "accounts"):
            return json_reply(201, {"account": self._control_add_account(payload)})
        if (method, route) == ("POST", "config"):
            for key in ("activation_seconds", "activation_delay"):
                if key in payload:
                    self.activation_delay = float(payload[key])
            return json_reply(
                200,
                {
                    "activation_seconds": self.activation_delay,
                    "activation_delay": self.activation_delay,
                },
            )
        return json_reply(404, {"error": f"No control route {method} /_simulator/{route}"})

    def _control_faults(self, method: str, payload: dict[str, Any]) -> Reply:
        if method == "GET":
            return json_reply(200, {"faults": self.faults()})
        if method == "DELETE":
            self.clear_faults()
            return json_reply(200, {"ok": True})
        fault = self.add_fault(
            payload["mode"],
            action=payload.get("action"),
            instance_id=payload.get("instance_id"),
            count=int(payload.get("count", 1)),
            delay=float(payload["delay"]) if payload.get("delay") is not None else None,
            retry_after_ms=payload.get("retry_after_ms"),
            code=payload.get("code"),
        )
        return json_reply(201, {"fault": asdict(fault)})

    def _control_add_account(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.add_account(
            instance_id=payload["InstanceId"],
            account_name=payload["AccountName"],
            privilege=payload.get("AccountPrivilege", "RoleReadWrite"),
            account_type=payload.get("AccountType", "Normal"),
            description=payload.get("AccountDescription", ""),
            status=payload.get("AccountStatus", "Available"),
        )


def _wants_xml(request: IncomingRequest, params: Mapping[str, str]) -> bool:
    """A V2 call answers in its ``Format``, XML when absent (the gateway's default)."""
    if (request.header("authorization") or "").startswith("ACS3-") or "Signature" not in params:
        return False
    return (params.get("Format") or "XML").upper() == "XML"


def _as_xml(reply: Reply, root: str) -> Reply:
    """The JSON answer in Alibaba's XML shape: lists repeat their element's name."""
    if reply.reset or not reply.content_type.startswith("application/json"):
        return reply
    data = json.loads(reply.body)
    element = ElementTree.Element("Error" if "Code" in data and reply.status >= 400 else root)
    _xml_children(element, data)
    text = ElementTree.tostring(element, encoding="unicode")
    reply.body = ("<?xml version='1.0' encoding='UTF-8'?>" + text).encode("utf-8")
    reply.content_type = "text/xml;charset=utf-8"
    return reply


def _xml_children(parent: ElementTree.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, list):
                for entry in item:
                    _xml_children(ElementTree.SubElement(parent, key), entry)
            else:
                _xml_children(ElementTree.SubElement(parent, key), item)
    elif isinstance(value, bool):
        parent.text = "true" if value else "false"
    elif value is not None:
        parent.text = str(value)


def _int_param(params: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise checks.invalid_parameter(name) from None
    if not low <= value <= high:
        raise checks.invalid_parameter(name)
    return value


# --- HTTP ------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real endpoint
    server_version = "kvstore-simulator"
    sys_version = ""
    timeout = 60  # idle keep-alive connections end after a minute
    server: _HTTPServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        simulator = self.server.simulator
        target = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            return
        if target.path.startswith(CONTROL_PREFIX):
            reply = simulator.handle_control(self.command, target.path, target.query, body)
        else:
            request = IncomingRequest(self.command, target.path, target.query, self.headers, body)
            reply = simulator.handle_api(request)
        self._send(reply)

    def _read_body(self) -> bytes | None:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            self._send(json_reply(411, {"error": "Send a Content-Length."}))
            self.close_connection = True
            return None
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._send(json_reply(413, {"error": "Body too large or bad Content-Length."}))
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, reply: Reply) -> None:
        stop = self.server.simulator.stop_event
        if reply.reset:
            self._reset_connection()
            return
        if reply.delay_before_send and stop.wait(reply.delay_before_send):
            self._reset_connection()
            return
        head, body = self._encode(reply)
        try:
            if reply.drip_interval is None:
                self.wfile.write(head + body)
                self.wfile.flush()
            elif reply.drip_headers:
                self._drip(head + body, reply.drip_interval)
            else:
                self.wfile.write(head)
                self.wfile.flush()
                self._drip(body, reply.drip_interval)
        except OSError:
            self.close_connection = True

    def _encode(self, reply: Reply) -> tuple[bytes, bytes]:
        phrase = HTTPStatus(reply.status).phrase
        headers = {
            "Date": self.date_time_string(),
            "Server": self.server_version,
            "Content-Type": reply.content_type,
            "Content-Length": str(len(reply.body)),
            "Connection": "close" if self.close_connection else "keep-alive",
            **reply.headers,
        }
        lines = [f"{self.protocol_version} {reply.status} {phrase}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), reply.body

    def _drip(self, data: bytes, interval: float) -> None:
        stop = self.server.simulator.stop_event
        for index in range(len(data)):
            self.wfile.write(data[index : index + 1])
            self.wfile.flush()
            if stop.wait(interval):
                self.close_connection = True
                return

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN. The
        # descriptor is detached first so the handler's own cleanup finds nothing to close.
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(self.connection.detach())
        except OSError:
            pass

    # The default handler logs the request line, which can hold parameters (the official
    # SDKs put them in the query string, AccountPassword included). The simulator logs
    # its own line per call instead, without any parameter value.
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        log.warning("HTTP error from %s", self.client_address[0])

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops connections that arrive together (a
    # concurrency test, two app servers), and each dropped SYN costs a 1 s retransmit.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        self.simulator = simulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can hang without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class SimulatorServer:
    """The simulator on a socket: ``start()`` in a thread, or ``serve_forever()``."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator
        self.httpd = _HTTPServer((host, port), simulator)
        self.host, self.port = self.httpd.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            # stop() waits for the loop to notice: a short poll keeps test teardown quick.
            kwargs={"poll_interval": 0.01},
            name=f"kvstore-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self.simulator.stop_event.set()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.close_connections()
        self.httpd.server_close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    state_path: Path | str,
    access_key_id: str,
    access_key_secret: str,
    activation_delay: float = DEFAULT_ACTIVATION_DELAY,
) -> None:
    """Run the simulator in the foreground until SIGINT or SIGTERM."""
    _configure_logging()
    simulator = Simulator(
        state_path=state_path,
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
        activation_delay=activation_delay,
    )
    server = SimulatorServer(simulator, host, port)

    stopping = threading.Event()

    def interrupt(signum: int, frame: object) -> None:
        # Only the first signal stops the server: Ctrl-C under `make run` reaches this
        # process both from the terminal and from the runner, and a second interrupt must
        # not break the shutdown.
        if not stopping.is_set():
            stopping.set()
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    print(
        f"R-KVStore simulator listening on {server.endpoint} "
        f"(state: {simulator.store.path}, access key id: {access_key_id})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        # Python restores the default handlers when it exits; a late duplicate signal
        # would then kill the process and turn a clean stop into exit status 130.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("R-KVStore simulator stopped.", flush=True)


def _configure_logging() -> None:
    if not logging.getLogger().handlers and not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(description="Local R-KVStore API simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--state", default="var/kvstore-simulator.json", help="state file (created if missing)"
    )
    parser.add_argument(
        "--access-key-id", default=None, help="default: $ALIBABA_CLOUD_ACCESS_KEY_ID"
    )
    parser.add_argument(
        "--access-key-secret", default=None, help="default: $ALIBABA_CLOUD_ACCESS_KEY_SECRET"
    )
    parser.add_argument(
        "--activation-seconds",
        "--activation-delay",
        dest="activation_delay",
        type=float,
        default=DEFAULT_ACTIVATION_DELAY,
        help="seconds a new account stays Unavailable (default: 60, like the real service)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    key_id = args.access_key_id or os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "")
    secret = args.access_key_secret or os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "")
    if not key_id or not secret:
        raise SystemExit(
            "Set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (or pass "
            "--access-key-id and --access-key-secret)."
        )
    serve(
        host=args.host,
        port=args.port,
        state_path=args.state,
        access_key_id=key_id,
        access_key_secret=secret,
        activation_delay=args.activation_delay,
    )


if __name__ == "__main__":
    main()
