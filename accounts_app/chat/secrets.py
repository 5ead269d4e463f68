"""A chat channel's credentials at rest: encrypted with CHAT_ENCRYPTION_KEYS (Fernet),
shown back only masked. A webhook URL is a credential on every platform: its token
alone lets anyone post to the group."""

from __future__ import annotations

from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _fernet() -> MultiFernet:
    if not settings.CHAT_ENCRYPTION_KEYS:
        raise ImproperlyConfigured(
            "Set CHAT_ENCRYPTION_KEYS (see .env.example): chat credentials are kept encrypted."
        )
    return MultiFernet([Fernet(key.encode()) for key in settings.CHAT_ENCRYPTION_KEYS])


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode() if value else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise ImproperlyConfigured(
            "A chat credential cannot be decrypted with CHAT_ENCRYPTION_KEYS: was a key removed?"
        ) from error


def mask_url(url: str) -> str:
    """The scheme and host only: the path and query hold the token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.netloc else "…"


def mask_secret(secret: str) -> str:
    return "••••" + secret[-2:] if len(secret) > 8 else ("••••" if secret else "")
