"""Checking that a chat callback comes from the platform, as each documents it.

Slack: https://api.slack.com/authentication/verifying-requests-from-slack
Feishu/Lark: https://open.feishu.cn/document/uAjLw4CM/ukTMukTMukTM/event-subscription-guide/callback-subscription/receive-and-handle-callbacks
(docs/chat-platforms.md says the same in a few lines).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# Slack refuses requests older than five minutes; Feishu gives no figure, so the same.
MAX_AGE_SECONDS = 300


class CallbackRefused(Exception):
    """The callback is not the platform's, or not now: its reason goes to the audit log."""


def check_age(timestamp: str, now: float) -> None:
    if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        raise CallbackRefused("timestamp missing or older than five minutes")


def slack_check(*, secret: str, timestamp: str, signature: str, body: bytes, now: float) -> None:
    """X-Slack-Signature: "v0=" + hex HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)."""
    if not secret:
        raise CallbackRefused("SLACK_SIGNING_SECRET is not set")
    check_age(timestamp, now)
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise CallbackRefused("signature does not match")


def feishu_check(
    *, encrypt_key: str, timestamp: str, nonce: str, signature: str, body: bytes, now: float
) -> None:
    """X-Lark-Signature: hex SHA-256 of timestamp + nonce + Encrypt Key + body."""
    if not encrypt_key:
        raise CallbackRefused("FEISHU_ENCRYPT_KEY is not set")
    check_age(timestamp, now)
    content = timestamp.encode() + nonce.encode() + encrypt_key.encode() + body
    if not hmac.compare_digest(hashlib.sha256(content).hexdigest(), signature):
        raise CallbackRefused("signature does not match")


def feishu_decrypt(*, encrypt_key: str, encrypted: str) -> dict:
    """AES-256-CBC, key SHA-256(Encrypt Key), the IV the first 16 bytes, PKCS#7."""
    try:
        data = base64.b64decode(encrypted)
        key = hashlib.sha256(encrypt_key.encode()).digest()
        decryptor = Cipher(algorithms.AES(key), modes.CBC(data[:16])).decryptor()
        padded = decryptor.update(data[16:]) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return json.loads(unpadder.update(padded) + unpadder.finalize())
    except (ValueError, TypeError) as error:
        raise CallbackRefused(f"cannot decrypt ({type(error).__name__})") from None
