"""The control API of the simulator, used by tests and the demo.

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
    Add an account directly, as the console or a script would "outside the dashboard"
    (drift): ``InstanceId``, ``AccountName``, optional ``AccountPrivilege``,
    ``AccountType``, ``AccountDescription``, ``AccountStatus`` (``Available`` by default).
``POST /_simulator/config``
    ``{"activation_seconds": seconds}`` (``activation_delay`` is the older name).

"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl

from .gateway import Reply, json_reply

CONTROL_PREFIX = "/_simulator/"


class ControlApi:
    """The control routes of a Simulator."""

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
