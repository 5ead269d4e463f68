"""`{% load layout %}{% topbar %}`: the shared layout's header, written out in Python.

Every page draws it, so its cost is paid on every request: through the template
language, its links, labels and language list cost more than many pages' own content
(docs/benchmarks.md). What is the same for every user of a language (the reversed URLs,
the translated labels, the language list) is built once per process and language; only
what is the user's own (which links their roles show, the badge, their name, the CSRF
token, the current page) is added per request.
"""

from __future__ import annotations

from functools import lru_cache
from html import escape

from django import template
from django.conf import settings
from django.middleware.csrf import get_token
from django.urls import get_script_prefix, reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, get_language_info, gettext
from django.utils.translation import gettext_lazy as _

from accounts_app.context_processors import BADGE_CAP

register = template.Library()

# (URL name, label, who sees it: a context flag from context_processors.navigation).
NAV_LINKS = [
    ("dashboard", _("Dashboard"), None),
    ("request_list", _("Requests"), None),
    ("request_new", _("New request"), "nav_can_request"),
    ("approvals", _("Approvals"), "nav_can_approve"),
    ("instances", _("Instances"), None),
    ("audit", _("Audit log"), "nav_can_view_everything"),
    ("created_accounts", _("Created accounts"), "nav_can_view_everything"),
]


@lru_cache(maxsize=32)
def _fixed_parts(language: str, script_prefix: str) -> dict:
    """What the header holds for every user of `language`; keyed by the script prefix
    too, since the URLs depend on it."""
    links = {name: (reverse(name), str(label)) for name, label, _flag in NAV_LINKS}
    languages = [
        (code, get_language_info(code)["name_local"]) for code, _name in settings.LANGUAGES
    ]
    return {
        "links": links,
        "brand": gettext("Redis accounts"),
        "main": gettext("Main"),
        "waiting": gettext("waiting for your decision"),
        "set_language": reverse("set_language"),
        "language": gettext("Language"),
        "languages": languages,
        "switch": gettext("Switch"),
        "logout": reverse("logout"),
        "sign_out": gettext("Sign out"),
        "preferences": reverse("preferences"),
    }


@register.simple_tag(takes_context=True)
def topbar(context, language_next: str = "") -> SafeString:
    """The header. ``language_next``: where the language switcher returns to, when not
    this page's own address (a sign-in callback's address holds the authorization code)."""
    # Some pages are drawn without a request (django-axes' lockout page): no form token,
    # no current page then, as {% csrf_token %} and request.* would give.
    request = context.get("request")
    user = context.get("user")
    language = get_language()
    fixed = _fixed_parts(language, get_script_prefix())
    csrf = ""
    if request is not None:
        token = escape(get_token(request))
        csrf = f'<input type="hidden" name="csrfmiddlewaretoken" value="{token}">'
    match = getattr(request, "resolver_match", None)
    current = match.url_name if match else None
    next_path = language_next or (request.get_full_path() if request is not None else "")
    signed_in = user is not None and user.is_authenticated
    brand_url = escape(fixed["links"]["dashboard"][0])
    parts = [
        f'<header class="topbar"><a class="brand" href="{brand_url}">{escape(fixed["brand"])}</a>'
    ]
    if signed_in:
        parts.append(f'<nav class="nav" aria-label="{escape(fixed["main"])}">')
        for name, _label, flag in NAV_LINKS:
            if flag and not context.get(flag):
                continue
            url, label = fixed["links"][name]
            here = ' aria-current="page"' if name == current else ""
            badge = ""
            if name == "approvals":
                badge = _badge(context.get("nav_waiting_count"), fixed["waiting"])
            parts.append(f'<a href="{escape(url)}"{here}>{escape(label)}{badge}</a>')
        parts.append("</nav>")
    options = "".join(
        f'<option value="{code}" lang="{code}"{" selected" if code == language else ""}>'
        f"{escape(name)}</option>"
        for code, name in fixed["languages"]
    )
    parts.append(
        f'<div class="topbar-right"><form action="{escape(fixed["set_language"])}" '
        f'method="post" class="language-switcher">{csrf}'
        f'<input name="next" type="hidden" value="{escape(next_path)}">'
        f'<label class="visually-hidden" for="language-select">{escape(fixed["language"])}'
        f'</label><select name="language" id="language-select">{options}</select>'
        f'<button type="submit" class="button-small">{escape(fixed["switch"])}</button></form>'
    )
    if signed_in:
        roles = context.get("nav_roles")
        shown_roles = f' <span class="muted">({escape(", ".join(roles))})</span>' if roles else ""
        parts.append(
            f'<span class="whoami"><a href="{escape(fixed["preferences"])}">'
            f"{escape(user.get_username())}</a>{shown_roles}</span>"
            f'<form action="{escape(fixed["logout"])}" method="post">{csrf}'
            f'<button type="submit" class="button-small">{escape(fixed["sign_out"])}</button>'
            "</form>"
        )
    parts.append("</div></header>")
    return mark_safe("".join(parts))  # noqa: S308 (every part escaped)


def _badge(count, title: str) -> str:
    if callable(count):
        count = count()
    if not count:
        return ""
    shown = f"{BADGE_CAP - 1}+" if count >= BADGE_CAP else str(count)
    return f' <span class="badge badge-count" title="{escape(title)}">{shown}</span>'
