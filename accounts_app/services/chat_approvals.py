"""Approving and rejecting from a chat button: Slack interactivity, Feishu/Lark card
callbacks.

A callback is the platform's (signature and age checked as documented, in
accounts_app/chat/verify.py) and new (a replay is refused), then the chat user must
be linked to a dashboard user (accounts_app/services/chat.py). The decision itself is
the page's: policy.py's questions and workflow.request_approve/request_reject, four
eyes included. Only privileges that policy lets chat decide are decided here; the
others get a link to the page, where its sign-in and re-authentication apply. Every
decision and every refusal is in the audit log with the platform and the channel.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from accounts_app import policy
from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import message as audit_message
from accounts_app.background.delivery import site_url
from accounts_app.chat import messages, platforms, verify
from accounts_app.chat.models import ChatChannel, ChatIdentity, ChatNonce
from accounts_app.chat.verify import CallbackRefused
from accounts_app.models import AccountRequest, AuditEvent
from accounts_app.services import workflow
from accounts_app.services.chat import link_code

logger = logging.getLogger(__name__)

PLATFORM_NAMES = {"slack": "Slack", "feishu": "Feishu/Lark"}


@dataclass(frozen=True)
class Click:
    """A verified button click: who (on the platform), which request, which verdict."""

    platform: str
    external_id: str
    request_id: int
    verdict: str  # "approve" | "reject"
    channel_id: int | None = None
    response_url: str = ""  # Slack's, to replace the message


@dataclass(frozen=True)
class Reply:
    """What the chat user is told, and the message updated after a decision."""

    decided: bool
    text: str
    message: messages.Message | None = None


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: dict | None = None


# --- Slack -------------------------------------------------------------------------


def slack_callback(*, body: bytes, headers, source_ip: str | None) -> HttpAnswer:
    # Reference: https://api.slack.com/interactivity/handling#payloads
    try:
        signature = headers.get("X-Slack-Signature", "")
        verify.slack_check(
            secret=settings.SLACK_SIGNING_SECRET,
            timestamp=headers.get("X-Slack-Request-Timestamp", ""),
            signature=signature,
            body=body,
            now=time.time(),
        )
        _first_use("slack", signature)
        payload = json.loads(parse_qs(body.decode())["payload"][0])
        action = payload["actions"][0]
        if action.get("action_id") not in {"approve", "reject"}:
            return HttpAnswer(200)  # the link button: Slack tells us of every click
        request_id, channel_id = _button_value(action["value"])
        click = Click(
            "slack",
            payload["user"]["id"],
            request_id,
            action["action_id"],
            channel_id,
            payload.get("response_url", ""),
        )
    except (CallbackRefused, ValueError, KeyError, IndexError, TypeError) as error:
        _audit_refusal("slack", _reason(error), source_ip)
        return HttpAnswer(403)
    reply = decide(click, source_ip=source_ip)
    if click.response_url:
        _slack_respond(click.response_url, reply)
    return HttpAnswer(200)


def _button_value(value: str) -> tuple[int, int | None]:
    """ "<request id>:<channel id>", as accounts_app/chat/messages.py writes it."""
    request_id, _sep, channel_id = str(value).partition(":")
    return int(request_id), int(channel_id) if channel_id else None


def _slack_respond(response_url: str, reply: Reply) -> None:
    # Reference: https://api.slack.com/interactivity/handling#message_responses
    if reply.message is not None:
        body = {"replace_original": True, **messages.payload("slack", reply.message)}
    else:
        body = {"response_type": "ephemeral", "replace_original": False, "text": reply.text}
    try:
        platforms.post("slack", response_url, "", body, timeout=settings.CHAT_TIMEOUT)
    except platforms.ChatSendError as error:
        logger.warning("the Slack message could not be updated: %s", error)


# --- Feishu/Lark -------------------------------------------------------------------


def feishu_callback(*, body: bytes, headers, source_ip: str | None) -> HttpAnswer:
    # Reference: https://open.feishu.cn/document/uAjLw4CM/ukzMukzMukzM/feishu-cards/card-callback-communication
    key = settings.FEISHU_ENCRYPT_KEY
    try:
        signature = headers.get("X-Lark-Signature", "")
        if signature:
            verify.feishu_check(
                encrypt_key=key,
                timestamp=headers.get("X-Lark-Request-Timestamp", ""),
                nonce=headers.get("X-Lark-Request-Nonce", ""),
                signature=signature,
                body=body,
                now=time.time(),
            )
        outer = json.loads(body)
        data = verify.feishu_decrypt(encrypt_key=key, encrypted=outer["encrypt"]) if key else {}
        if data.get("type") == "url_verification":
            # Saving the callback URL: answer the challenge, nothing else.
            _check_feishu_token(data.get("token", ""))
            return HttpAnswer(200, {"challenge": data["challenge"]})
        if not signature:
            raise CallbackRefused("signature missing")
        header, event = data["header"], data["event"]
        _check_feishu_token(header.get("token", ""))
        _first_use("feishu", header["event_id"])
        value = event["action"]["value"]
        click = Click(
            "feishu",
            event["operator"]["open_id"],
            int(value["request_id"]),
            value["action"],
            int(value["channel"]) if value.get("channel") else None,
        )
        if click.verdict not in {"approve", "reject"}:
            raise CallbackRefused("unknown action")
    except (CallbackRefused, ValueError, KeyError, IndexError, TypeError) as error:
        _audit_refusal("feishu", _reason(error), source_ip)
        return HttpAnswer(403)
    reply = decide(click, source_ip=source_ip)
    answer = {"toast": {"type": "success" if reply.decided else "error", "content": reply.text}}
    if reply.message is not None:
        answer["card"] = {"type": "raw", "data": messages.payload("feishu", reply.message)["card"]}
    return HttpAnswer(200, answer)


def _check_feishu_token(token: str) -> None:
    expected = settings.FEISHU_VERIFICATION_TOKEN
    if not expected or token != expected:
        raise CallbackRefused("verification token does not match")


# --- The decision ------------------------------------------------------------------


def decide(click: Click, *, source_ip: str | None) -> Reply:
    """A verified click, decided as the page would, or refused and audited."""
    channel = ChatChannel.objects.filter(pk=click.channel_id).first() if click.channel_id else None
    with translation.override(channel.language if channel else settings.LANGUAGE_CODE):
        return _decide(click, channel, source_ip)


def _decide(click: Click, channel: ChatChannel | None, source_ip: str | None) -> Reply:
    where = _where(click, channel)
    identity = (
        ChatIdentity.objects.select_related("user")
        .filter(platform=click.platform, external_id=click.external_id, user__is_active=True)
        .first()
    )
    account_request = (
        AccountRequest.objects.select_related("instance", "requester")
        .filter(pk=click.request_id)
        .first()
    )
    user = identity.user if identity else None
    origin = _origin(click, user, where, source_ip)
    page = site_url(reverse("request_detail", args=[click.request_id]))
    if identity is None:
        preferences = site_url(reverse("preferences"))
        _audit(origin, account_request, "chat.not_linked", where)
        return Reply(
            False,
            _(
                "Your chat account is not linked to a dashboard user. Sign in at %(url)s "
                "and enter this one-time code under Chat accounts: %(code)s"
            )
            % {"url": preferences, "code": link_code(click.platform, click.external_id)},
        )
    if account_request is None:
        _audit(origin, None, "", where, no_request=click.request_id)
        return Reply(False, _("There is no such request."))
    if policy.owns(user, account_request):
        _audit(origin, account_request, "chat.own_request", where)
        return Reply(False, _("Nobody may approve or reject their own request."))
    if not policy.may_decide_on(user, account_request):
        _audit(origin, account_request, "chat.not_approver", where)
        return Reply(False, _("You may not approve or reject requests."))
    if not policy.may_decide_from_chat(account_request):
        _audit(origin, account_request, "chat.needs_page", where)
        return Reply(
            False,
            _("%(privilege)s is decided on the request's page: %(url)s")
            % {"privilege": account_request.account_privilege, "url": page},
        )
    comment = _("Decided from %(where)s") % {"where": where}
    decision = workflow.request_approve if click.verdict == "approve" else workflow.request_reject
    try:
        decision(request_id=account_request.pk, approver=user, comment=comment, origin=origin)
    except workflow.TransitionError as error:
        _audit(origin, account_request, "chat.not_decidable", where)
        return Reply(False, str(error))
    account_request.refresh_from_db()
    verdict = _("approved") if click.verdict == "approve" else _("rejected")
    note = _("%(verdict)s by %(user)s from %(where)s") % {
        "verdict": verdict,
        "user": user.get_username(),
        "where": where,
    }
    event = "approved" if click.verdict == "approve" else "rejected"
    message = messages.compose(
        event, account_request, translation.get_language(), note=note, channel_id=click.channel_id
    )
    return Reply(True, note, message)


def _where(click: Click, channel: ChatChannel | None) -> str:
    name = PLATFORM_NAMES[click.platform]
    return f"{name} ({channel.name})" if channel else name


def _origin(click: Click, user, where: str, source_ip: str | None) -> Origin:
    return Origin(
        actor=user,
        actor_name=user.get_username() if user else f"{click.platform}:{click.external_id}"[:150],
        source_ip=source_ip,
        user_agent=f"chat: {where}, user {click.external_id}"[:512],
    )


def _audit(origin: Origin, account_request, reason: str, where: str, no_request=None) -> None:
    """``reason``: a catalogue identifier (said in the reader's language) or the
    verifier's own short text."""
    if no_request is not None:
        said = audit_message(
            "chat.refused_no_request", where=where, request_id=str(no_request)[:64]
        )
    else:
        said = audit_message("chat.refused", where=where, reason=reason[:400])
    with transaction.atomic():
        record_event(
            action=AuditEvent.Action.PERMISSION_DENIED,
            outcome=AuditEvent.Outcome.DENIED,
            origin=origin,
            request=account_request,
            message=said,
        )


def _audit_refusal(platform: str, reason: str, source_ip: str | None) -> None:
    """A callback that is not the platform's, or a replay: nobody known sent it."""
    origin = Origin(
        actor_name=f"{platform} callback", source_ip=source_ip, user_agent=f"chat: {platform}"
    )
    _audit(origin, None, reason, PLATFORM_NAMES[platform])


# The verifiers' refusals (English, for logs and tests), as audit catalogue identifiers:
# the audit log says them in each reader's language.
REFUSAL_REASONS = {
    "timestamp missing or older than five minutes": "chat.stale",
    "signature does not match": "chat.bad_signature",
    "signature missing": "chat.no_signature",
    "unknown action": "chat.unknown_action",
    "verification token does not match": "chat.bad_token",
    "replayed": "chat.replayed",
}


def _reason(error: Exception) -> str:
    """A catalogue identifier for the refusal."""
    if not isinstance(error, CallbackRefused):
        return "chat.malformed"
    text = str(error)
    if text.endswith(" is not set"):
        return "chat.secret_not_set"
    if text.startswith("cannot decrypt"):
        return "chat.cannot_decrypt"
    return REFUSAL_REASONS.get(text, "chat.malformed")


def _first_use(platform: str, token: str) -> None:
    """Refuse a callback seen before: the same signed request sent again."""
    key = hashlib.sha256(token.encode()).hexdigest()
    try:
        with transaction.atomic():
            ChatNonce.objects.create(scope=platform, key=key)
    except IntegrityError:
        raise CallbackRefused("replayed") from None
