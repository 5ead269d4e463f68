"""Where a flash message waits for the next page: Django's signed cookie, and the session
only for what does not fit in it.

In the cookie, a POST that says something and the page that shows it write nothing to the
database (kept in the session, each wrote the session row). The cookie is signed with the
secret key, takes the session cookie's Secure, HttpOnly and SameSite flags, and is named
like the other cookies (``__Host-`` under HTTPS: settings.MESSAGE_COOKIE_NAME). A message
never holds a password: it holds what the next page shows its user.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.messages.storage.session import SessionStorage


class _MessageCookie(CookieStorage):
    @property
    def cookie_name(self) -> str:
        return settings.MESSAGE_COOKIE_NAME


class FlashMessages(FallbackStorage):
    storage_classes = (_MessageCookie, SessionStorage)
