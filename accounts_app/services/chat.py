"""Chat channels: adding and removing them (the admin and `manage.py chat_channel`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from accounts_app.chat.models import ChatChannel, ChatEvent


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
