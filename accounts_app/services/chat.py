"""Chat channels (the admin and `manage.py chat_channel`), and linking chat users."""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import urlsplit

from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts_app.chat.models import ChatChannel, ChatEvent, ChatIdentity, ChatNonce


def validate_webhook_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValidationError(_("A webhook URL starts with https:// and names a host."))


def validate_events(events: list[str]) -> None:
    unknown = sorted(set(events) - set(ChatEvent.values))
    if unknown:
        raise ValidationError(
            _("Unknown events: %(unknown)s. Known: %(known)s.")
            % {"unknown": ", ".join(unknown), "known": ", ".join(ChatEvent.values)}
        )


def chat_channel_add(
    *,
    name: str,
    kind: str,
    url: str,
    secret: str = "",
    language: str = ChatChannel.Language.ENGLISH,
    events: list[str] | None = None,
    regions: list[str] | None = None,
) -> ChatChannel:
    if kind not in ChatChannel.Kind.values:
        raise ValidationError(_("Unknown platform: %(kind)s.") % {"kind": kind})
    if language not in ChatChannel.Language.values:
        raise ValidationError(_("Unknown language: %(language)s.") % {"language": language})
    validate_webhook_url(url)
    validate_events(events or [])
    channel = ChatChannel(
        name=name, kind=kind, language=language, events=events or [], regions=regions or []
    )
    channel.url = url
    channel.secret = secret
    channel.full_clean()
    channel.save()
    return channel


def chat_channel_remove(*, name: str) -> bool:
    deleted, _rows = ChatChannel.objects.filter(name=name).delete()
    return bool(deleted)


# --- Linking a chat user ---------------------------------------------------------------

LINK_SALT = "accounts_app.chat.link"
# Long enough to switch from the chat to the dashboard and sign in.
LINK_CODE_MAX_AGE = 15 * 60


def link_code(platform: str, external_id: str) -> str:
    """A one-time code that names a verified chat user, for their preferences page.

    Given in answer to a verified callback, so the chat identity in it is the
    platform's word, not a display name anyone could choose.
    """
    return signing.dumps(
        {"platform": platform, "id": external_id, "nonce": secrets.token_hex(8)},
        salt=LINK_SALT,
        compress=True,
    )


def chat_identity_link(*, user, code: str) -> ChatIdentity:
    """Link the chat user the code names to `user`; each code works once."""
    try:
        data = signing.loads(code.strip(), salt=LINK_SALT, max_age=LINK_CODE_MAX_AGE)
        platform, external_id = data["platform"], data["id"]
    except (signing.BadSignature, KeyError, TypeError):
        raise ValidationError(_("This code is not valid or has expired.")) from None
    taken = ChatIdentity.objects.filter(platform=platform, external_id=external_id)
    if taken.exclude(user=user).exists():
        raise ValidationError(_("This chat account is linked to another user."))
    try:
        with transaction.atomic():
            ChatNonce.objects.create(scope="link", key=hashlib.sha256(code.encode()).hexdigest())
            identity, _created = ChatIdentity.objects.update_or_create(
                user=user, platform=platform, defaults={"external_id": external_id}
            )
    except IntegrityError:
        raise ValidationError(_("This code was used already.")) from None
    return identity


def chat_identity_unlink(*, user, platform: str) -> bool:
    deleted, _rows = ChatIdentity.objects.filter(user=user, platform=platform).delete()
    return bool(deleted)
