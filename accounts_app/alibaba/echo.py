"""Does a field of an API answer echo a secret the call carried, in any encoding?

A misbehaving endpoint (or a proxy in the way) may repeat the password it was sent,
raw or re-encoded: percent-hex in either case, HTML-escaped, base64, hex, `\\u`-escaped,
spaced out, or only part of it. What a call that carried a password gets back is read
through this before anything keeps it.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import warnings
from collections.abc import Iterable, Sequence
from urllib.parse import unquote, unquote_plus

# Shorter runs of a password are too common in ordinary text to mean anything.
FRAGMENT = 6
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")
_HEX_RUN = re.compile(r"(?:[0-9A-Fa-f]{2}){4,}")


def _decodings(text: str) -> set[str]:
    """The text, and what it reads as under every encoding an echo may use."""
    found = {text}
    for _round in range(2):  # twice: an encoding of an encoding
        for value in list(found):
            found.add(unquote(value))
            found.add(unquote_plus(value))
            found.add(html.unescape(value))
            found.add(re.sub(r"\s+", "", value))
            if "\\" in value:
                found.add(_unescaped(value))
            found.update(_decoded_runs(value))
    return found


def _unescaped(value: str) -> str:
    """`\\u0041`-style escapes read as the characters they stand for."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "\\<" and the like
        try:
            return codecs.decode(value, "unicode_escape")
        except (UnicodeDecodeError, ValueError):
            return value


def _decoded_runs(value: str) -> Iterable[str]:
    for run in _HEX_RUN.findall(value):
        try:
            yield binascii.unhexlify(run).decode("utf-8", "ignore")
        except (binascii.Error, ValueError):
            pass
    for run in _BASE64_RUN.findall(value):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                yield decode(run + "=" * (-len(run) % 4)).decode("utf-8", "ignore")
            except (binascii.Error, ValueError):
                pass


def _fragments(secret: str) -> set[str]:
    size = min(FRAGMENT, len(secret))
    return {secret[i : i + size].casefold() for i in range(len(secret) - size + 1)}


def echoes(value: str | None, secrets: Sequence[str]) -> bool:
    """True when `value` holds a secret, or any run of FRAGMENT of its characters."""
    if not value:
        return False
    fragments = set().union(*(_fragments(s) for s in secrets if s)) if secrets else set()
    if not fragments:
        return False
    return any(
        fragment in decoded.casefold() for decoded in _decodings(value) for fragment in fragments
    )


# Stands for an error code that echoed the secret: the code itself is not kept.
REDACTED_CODE = "Client.RedactedCode"
