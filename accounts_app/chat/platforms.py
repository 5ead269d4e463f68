"""Posting to each platform's group webhook, signed as the platform documents it.

docs/chat-platforms.md has the facts and the pages they come from. Errors never carry
the URL or the secret. The post goes through the standard library's HTTP client, not
requests: urllib3 logs each request's URL at DEBUG, and a webhook's URL holds its
token. Network errors are reported by their type alone for the same reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode, urlsplit

# Answers that mean "later": the platforms' rate limits, in their own codes.
# Reference: https://open.dingtalk.com/document/orgapp/custom-robot-access (410100)
# Reference: https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot (11232, 9499)
# Reference: https://developer.work.weixin.qq.com/document/path/91770 (45009)
RATE_LIMIT_CODES = {"dingtalk": {410100}, "feishu": {11232, 9499}, "wecom": {45009}}


class ChatSendError(Exception):
    """A post the platform did not accept. `retryable`: 5xx, rate limit, no answer."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """Base64(HMAC-SHA256(key=secret, message=timestamp + "\\n" + secret))."""
    message = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Base64(HMAC-SHA256(key=timestamp + "\\n" + secret, message=empty))."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def signed_request(
    kind: str, url: str, secret: str, payload: dict, *, now: float | None = None
) -> tuple[str, dict]:
    """The URL and body to post: signed where the platform signs and a secret is set."""
    now = time.time() if now is None else now
    if kind == "dingtalk" and secret:
        timestamp = int(now * 1000)
        query = urlencode({"timestamp": timestamp, "sign": dingtalk_sign(secret, timestamp)})
        url = f"{url}{'&' if '?' in url else '?'}{query}"
    elif kind == "feishu" and secret:
        timestamp = int(now)
        payload = {"timestamp": str(timestamp), "sign": feishu_sign(secret, timestamp), **payload}
    return url, payload


def post(kind: str, url: str, secret: str, payload: dict, *, timeout: float) -> None:
    """Post one message; raise ChatSendError unless the platform accepted it."""
    target, body = signed_request(kind, url, secret, payload)
    if urlsplit(target).scheme not in {"http", "https"}:
        raise ChatSendError(f"{kind}: the webhook URL is not http(s)", retryable=False)
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked just above)
        target,
        data=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
        method="POST",
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status, text = response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode("utf-8", "replace")
    except OSError as error:  # URLError and TimeoutError among them
        raise ChatSendError(f"{kind}: no answer ({type(error).__name__})", retryable=True) from None
    check_answer(kind, status, text)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook answers; it never sends the message (and its token) elsewhere."""

    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def check_answer(kind: str, status: int, text: str) -> None:
    if status == 429 or status >= 500:
        raise ChatSendError(f"{kind}: HTTP {status}", retryable=True)
    if status >= 300:
        raise ChatSendError(f"{kind}: HTTP {status} {text[:200]}", retryable=False)
    if kind == "slack":
        return  # Slack answers 200 "ok"; its errors come with 4xx statuses.
    try:
        answer = json.loads(text)
    except ValueError:
        raise ChatSendError(f"{kind}: not a JSON answer", retryable=True) from None
    # DingTalk and WeCom: errcode; Feishu: code (older answers: StatusCode).
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
    if code:
        message = str(answer.get("errmsg", answer.get("msg", "")))[:200]
        raise ChatSendError(
            f"{kind}: error {code} {message}", retryable=code in RATE_LIMIT_CODES.get(kind, set())
        )
