"""The simulated API gateway: the request's parameters, the V3 and V2 signatures, the
envelope of an answer (RequestId, error codes) and its format (JSON, or XML for V2).

Gateway errors: MissingParameter, IncompleteSignature, SignatureDoesNotMatch (V2 with
the " server string to sign is:..." suffix), InvalidTimeStamp.Expired/.Format (15
minutes), SignatureNonceUsed, InvalidAccessKeyId.NotFound, InvalidVersion,
InvalidAction.NotFound. Every answer has a ``RequestId`` (an upper-case UUID); V3 answers
and V2 answers with ``Format=JSON`` are JSON, other V2 answers XML (the gateway's
default). STS tokens (``x-acs-security-token`` / ``SecurityToken``) are accepted and
recorded (hashed), not validated.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl

from . import checks
from .checks import ApiError

NONCE_TTL_SECONDS = checks.TIMESTAMP_TOLERANCE_SECONDS
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


def sha256_text(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


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
class Authenticated:
    action: str
    params: dict[str, str]
    signature_version: str
    security_token: str | None


def json_reply(status: int, payload: Mapping[str, Any], **headers: str) -> Reply:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Reply(status, body, headers=dict(headers))


class Gateway:
    """Authentication and error answers of a Simulator (its ``_keys``, ``_nonces``, ``clock``)."""

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


def wants_xml(request: IncomingRequest, params: Mapping[str, str]) -> bool:
    """A V2 call answers in its ``Format``, XML when absent (the gateway's default)."""
    if (request.header("authorization") or "").startswith("ACS3-") or "Signature" not in params:
        return False
    return (params.get("Format") or "XML").upper() == "XML"


def as_xml(reply: Reply, root: str) -> Reply:
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
