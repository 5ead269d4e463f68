"""A local stand-in for Alibaba Cloud's R-KVStore API (2015-01-01), stdlib only.

Speaks the wire protocol docs/alibaba-api.md describes: RPC-style calls
``POST`` (or ``GET``) to ``/`` with parameters in the query string and/or a form body,
signed with V3 (``ACS3-HMAC-SHA256``) or V2 (``HMAC-SHA1``), verified against the one
access key pair it was started with. Alibaba's official SDKs work against it unchanged.

``Simulator`` takes a request through its parts: the gateway (gateway.py: parameters,
signatures, the envelope), fault injection (faults.py), the service (service.py: the
operations and their state) and the call log; the control API is in control.py, the
HTTP server in httpserver.py, the command line in cli.py.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import checks
from .checks import ApiError
from .control import ControlApi
from .demo_estate import demo_estate
from .faults import Fault, FaultInjection
from .gateway import (
    Authenticated,
    Gateway,
    IncomingRequest,
    Reply,
    as_xml,
    json_reply,
    sha256_text,
    wants_xml,
)
from .service import DEFAULT_ACTIVATION_DELAY, MUTATING_ACTIONS, Operations
from .state import StateStore

# Configured for the whole package by cli.py.
log = logging.getLogger(__name__)

CALL_LOG_SIZE = 10_000


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


class Simulator(Operations, Gateway, FaultInjection, ControlApi):
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
            if wants_xml(request, merged):
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
        return as_xml(reply, xml_root) if xml_root else reply

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
        # Only the action, instance and outcome: never a parameter value. DEBUG: one line
        # per call would bury the demo's banner (LOG_LEVEL=DEBUG shows them).
        log.debug(
            "%s %s instance=%s -> %s %s%s",
            entry["signature_version"] or "-",
            entry["action"] or "-",
            entry["instance_id"] or "-",
            "reset" if reply is not None and reply.reset else status,
            code or "OK",
            f" [fault {entry['fault']}]" if entry["fault"] else "",
        )
