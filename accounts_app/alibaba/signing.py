"""Request signing for Alibaba Cloud RPC-style APIs (R-KVStore 2015-01-01).

Two methods, both built on the same RFC 3986 percent-encoding:

- V3, ``ACS3-HMAC-SHA256``: what the current official SDK sends.
  Reference: https://www.alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature
- V2, RPC signature ``HMAC-SHA1`` / ``SignatureVersion=1.0``: the older SDKs, still served.
  Reference: https://www.alibabacloud.com/help/en/sdk/product-overview/rpc-mechanism

Pure functions only: no I/O, no Django, no logging. The secret and every parameter value
(an ``AccountPassword`` included) pass through here, so nothing in this module may keep,
print or raise them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

V3_ALGORITHM = "ACS3-HMAC-SHA256"
V2_SIGNATURE_METHOD = "HMAC-SHA1"
V2_SIGNATURE_VERSION = "1.0"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# RFC 3986 unreserved characters stay as they are; everything else becomes %XY in
# uppercase hex of its UTF-8 bytes (space is %20, "*" is %2A, "~" stays).
_UNRESERVED = "-_.~"


def percent_encode(value: str) -> str:
    """Percent-encode one key or value the way both signature methods require."""
    return quote(value, safe=_UNRESERVED)


def utc_timestamp(now: datetime | None = None) -> str:
    """``yyyy-MM-ddTHH:mm:ssZ`` in UTC, the format of ``x-acs-date`` and ``Timestamp``."""
    if now is not None:
        return now.astimezone(UTC).strftime(TIMESTAMP_FORMAT)
    return time.strftime(TIMESTAMP_FORMAT, time.gmtime())  # a few times faster than datetime


def new_nonce() -> str:
    """128 random bits; the gateway rejects a reused nonce with ``SignatureNonceUsed``."""
    return secrets.token_hex(16)


def canonical_query_string(params: Mapping[str, str]) -> str:
    """Parameters sorted by key, each ``encode(key)=encode(value)``, joined by ``&``.

    Keys are sorted as given (not as encoded), like Alibaba's own SDKs; for the API's
    parameter names (ASCII letters and digits) the two orders are the same.
    """
    return "&".join(
        f"{percent_encode(key)}={percent_encode(params[key])}" for key in sorted(params)
    )


def form_encode(params: Mapping[str, str]) -> str:
    """An ``application/x-www-form-urlencoded`` body with RFC 3986 encoding."""
    return canonical_query_string(params)


# --- V3: ACS3-HMAC-SHA256 -------------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def v3_canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """Return ``(CanonicalHeaders, SignedHeaders)`` for the headers given.

    Every header passed in is signed: the caller chooses them (host, content-type and
    every ``x-acs-*`` header, per the V3 page). Names are lowercased, values trimmed.
    """
    lowered = sorted((name.lower(), value.strip()) for name, value in headers.items())
    canonical = "".join(f"{name}:{value}\n" for name, value in lowered)
    signed = ";".join(name for name, _ in lowered)
    return canonical, signed


def v3_canonical_request(
    *,
    method: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_hash: str,
    pathname: str = "/",
) -> tuple[str, str]:
    """Return ``(CanonicalRequest, SignedHeaders)``."""
    canonical_headers, signed_headers = v3_canonical_headers(headers)
    canonical = "\n".join(
        (
            method.upper(),
            pathname or "/",
            canonical_query_string(query),
            canonical_headers,
            signed_headers,
            payload_hash,
        )
    )
    return canonical, signed_headers


def v3_string_to_sign(canonical_request: str) -> str:
    return f"{V3_ALGORITHM}\n{sha256_hex(canonical_request.encode())}"


def v3_signature(access_key_secret: str, string_to_sign: str) -> str:
    return hmac.digest(access_key_secret.encode(), string_to_sign.encode(), "sha256").hex()


def v3_authorization(
    *,
    method: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_hash: str,
    access_key_id: str,
    access_key_secret: str,
    pathname: str = "/",
) -> str:
    """The ``Authorization`` header value for a V3 request."""
    canonical, signed_headers = v3_canonical_request(
        method=method, query=query, headers=headers, payload_hash=payload_hash, pathname=pathname
    )
    signature = v3_signature(access_key_secret, v3_string_to_sign(canonical))
    return (
        f"{V3_ALGORITHM} Credential={access_key_id},"
        f"SignedHeaders={signed_headers},Signature={signature}"
    )


def v3_signed_headers(
    *,
    host: str,
    action: str,
    version: str,
    body: bytes,
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None = None,
    content_type: str = "application/x-www-form-urlencoded",
    timestamp: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Every header a V3 POST to ``/`` with a form body needs, ``Authorization`` included.

    All parameters travel in the body, so the canonical query string is empty and the
    body hash covers them (an ``AccountPassword`` never reaches a URL).
    """
    headers = {
        "host": host,
        "content-type": content_type,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": timestamp or utc_timestamp(),
        "x-acs-signature-nonce": nonce or new_nonce(),
        "x-acs-content-sha256": sha256_hex(body),
    }
    if security_token:
        # V3 carries an STS token in this header, and it is signed like every x-acs-*.
        headers["x-acs-security-token"] = security_token
    headers["authorization"] = v3_authorization(
        method="POST",
        query={},
        headers=headers,
        payload_hash=headers["x-acs-content-sha256"],
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
    )
    return headers


# --- V2: RPC, HMAC-SHA1 -----------------------------------------------------------------


def v2_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&encode(CanonicalizedQueryString)``; ``Signature`` itself is left out."""
    unsigned = {key: value for key, value in params.items() if key != "Signature"}
    return f"{method.upper()}&%2F&{percent_encode(canonical_query_string(unsigned))}"


def v2_signature(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """Base64 of HMAC-SHA1 keyed with ``secret + "&"`` over the string to sign."""
    digest = hmac.digest(
        f"{access_key_secret}&".encode(), v2_string_to_sign(method, params).encode(), "sha1"
    )
    return base64.b64encode(digest).decode()


def v2_signed_params(
    *,
    action: str,
    version: str,
    params: Mapping[str, str],
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None = None,
    method: str = "POST",
    timestamp: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The operation's parameters plus the common ones and ``Signature``."""
    signed = dict(params)
    signed.update(
        {
            "Action": action,
            "Version": version,
            # The V2 default answer format is XML; this client only reads JSON.
            "Format": "JSON",
            "AccessKeyId": access_key_id,
            "SignatureMethod": V2_SIGNATURE_METHOD,
            "SignatureVersion": V2_SIGNATURE_VERSION,
            "SignatureNonce": nonce or new_nonce(),
            "Timestamp": timestamp or utc_timestamp(),
        }
    )
    if security_token:
        signed["SecurityToken"] = security_token
    signed["Signature"] = v2_signature(method, signed, access_key_secret)
    return signed
