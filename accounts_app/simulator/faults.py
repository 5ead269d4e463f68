"""Fault injection: the ways a real network and a real gateway fail, on demand.

The modes are listed in control.py, where tests and demos add them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from . import checks
from .gateway import Reply

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

HTML_ERROR_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>Tengine</center></body></html>"
)


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


class FaultInjection:
    """The faults of a Simulator: added, listed, taken by a call, applied to its answer."""

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
