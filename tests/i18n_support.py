"""What the translation tests share: the catalogue on disk, and "is this page English?".

A page in Chinese may still hold Latin letters: product names and API codes that the
Alibaba Cloud console itself leaves untranslated (Redis, RoleReadOnly, RequestId...),
and data (instance IDs, account names, usernames, descriptions typed by users). Every
other Latin word is a string someone forgot to mark, or a translation that is missing.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCALE_DIR = ROOT / "locale"
ZH_PO = LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "django.po"

# Product names, API names and codes that the Chinese console shows as they are.
ALLOWED_WORDS = frozenset(
    """
    Redis Tair ApsaraDB KVStore R-KVStore RoleReadOnly RoleReadWrite RoleRepl AUTH RequestId
    DescribeAccounts CreateAccount DescribeInstances VPC ID IP API UTC CST CSV JSON SSL
    AccessKey Secret STS RAM NTP Endpoint KVSTORE_ENDPOINT MIN_APPROVALS User-Agent English
    http https
    admin root select
    Authorization Bearer Idempotency-Key CSRF X-CSRFToken Slack Webhook
    """.split()
)
# API values that messages quote as the API writes them: "状态：Changing", "cluster 架构".
# (The status and architecture columns show translated names, checked separately.)
ALLOWED_API_VALUES = frozenset(
    """
    Normal Creating Changing Inactive Flushing Released Transforming Unavailable Available
    Error Migrating BackupRecovering MinorVersionUpgrading MajorVersionUpgrading
    NetworkModifying SSLModifying standard cluster rwsplit
    """.split()
)
# The API's own words for the VPC authentication mode, quoted as the console shows them.
ALLOWED_PHRASES = (
    "JSON Lines",
    "ApsaraDB for Redis",
    "VpcAuthMode Open",
    "VpcAuthMode Close",
    "verify_audit_chain --checkpoint",
    # The JSON API: a header's placeholder, the docs link, and its token scopes as sent.
    "<token>",
    "&lt;token&gt;",
    '<a href="/api/v1/docs">',
    "<code>",
    "</code>",
    *(f"{scope}：" for scope in ("read", "request", "approve", "execute", "audit")),
)

# Words: two or more Latin letters (single letters are ranges such as "a–z").
WORD = re.compile(r"[A-Za-z][A-Za-z_'’-]*[A-Za-z]")
# Elements whose text is code or data, never prose.
SKIPPED_ELEMENTS = frozenset({"script", "style", "code", "pre", "template"})
TEXT_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if not self.skipping:
            self.parts.extend(values[name] or "" for name in TEXT_ATTRIBUTES if name in values)
            if tag == "input" and values.get("type") in {"submit", "button"}:
                self.parts.append(values.get("value") or "")
        if tag in SKIPPED_ELEMENTS and tag not in VOID_ELEMENTS:
            self.skipping.append(tag)

    def handle_endtag(self, tag):
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """The text a reader sees or hears: text nodes and labelling attributes, without
    scripts, JSON, styles, and code samples (<code>, <pre>)."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    return "\n".join(part for part in parser.parts if part.strip())


def time_zone_names() -> set[str]:
    return set(zoneinfo.available_timezones())


def english_words(text: str, data: Iterable[str] = ()) -> list[str]:
    """Latin words of `text` that are neither data nor on the allowlists."""
    for value in sorted({d for d in data if d}, key=len, reverse=True):
        text = text.replace(value, " ")
    for phrase in ALLOWED_PHRASES:
        text = text.replace(phrase, " ")
    return [
        word
        for word in WORD.findall(text)
        if word not in ALLOWED_WORDS and word not in ALLOWED_API_VALUES
    ]


# --- PO files --------------------------------------------------------------------


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstrs: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def translated(self) -> bool:
        return bool(self.msgstrs) and all(self.msgstrs)


_KEYWORD = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (\".*\")$")


def read_po(path: Path) -> list[Entry]:
    """The entries of a PO file, header excluded (a parser just big enough for ours)."""
    entries: list[Entry] = []
    entry = Entry()
    current = ""
    started = False

    def finish():
        nonlocal entry, started
        if started and entry.msgid != "":
            entries.append(entry)
        entry, started = Entry(), False

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            entry.obsolete = True
            continue
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        match = _KEYWORD.match(line)
        if match:
            started = True
            keyword, value = match.group(1), json.loads(match.group(2))
            current = keyword
            if keyword.startswith("msgstr"):
                entry.msgstrs.append(value)
            else:
                setattr(entry, keyword, value)
        elif line.startswith('"'):
            value = json.loads(line)
            if current.startswith("msgstr"):
                entry.msgstrs[-1] += value
            else:
                setattr(entry, current, getattr(entry, current) + value)
    finish()
    return [e for e in entries if not e.obsolete]
