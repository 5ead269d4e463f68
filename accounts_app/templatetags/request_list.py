"""`{% load request_list %}`: the request list's tabs and rows, written out in Python
(as rows.py does for the other long tables, for the same reason)."""

from __future__ import annotations

from html import escape

from django import template
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from accounts_app.selectors.request_list import ALL, MINE, WAITING
from accounts_app.templatetags.rows import PRIVILEGE_LABELS, STATUS_LABELS, _label, _time, url_maker

register = template.Library()

TAB_LABELS = {
    MINE: _("My requests"),
    WAITING: _("Waiting for my approval"),
    ALL: _("All requests I may see"),
}


@register.simple_tag
def request_tabs(tabs, current: str) -> SafeString:
    links = "".join(
        f'<a href="?tab={tab}"{" aria-current=page" if tab == current else ""}>'
        f"{escape(str(TAB_LABELS[tab]))}</a>"
        for tab in tabs
    )
    return mark_safe(f'<nav class="tabs" aria-label="{escape(str(_("Requests")))}">{links}</nav>')  # noqa: S308


@register.simple_tag
def request_list_rows(rows) -> SafeString:
    """One row per request (selectors.request_list.ROW_VALUES), with its approvals so far."""
    request_url = url_maker("request_detail", 999_999_999)
    instance_url = url_maker("instance_detail", "instance-id")
    lines = []
    for row in rows:
        pk, instance_id, name = row["pk"], row["instance__instance_id"], row["instance__name"]
        name = f'<div class="muted">{escape(name)}</div>' if name else ""
        lines.append(
            f'<tr data-request="{pk}"><td><a href="{request_url(pk)}">{pk}</a></td>'
            f"<td><code>{escape(row['account_name'])}</code></td>"
            f'<td><a href="{escape(instance_url(instance_id))}">'
            f"{escape(instance_id)}</a>{name}</td>"
            f"<td>{escape(str(_label(PRIVILEGE_LABELS, row['account_privilege'])))}</td>"
            f"<td>{escape(row['requester__username'])}</td>"
            f'<td><span class="status status-{escape(row["status"])}">'
            f"{escape(str(_label(STATUS_LABELS, row['status'])))}</span></td>"
            f'<td class="nowrap" data-approvals>{row["approvals_given"]} / '
            f"{row['approvals_required']}</td>"
            f'<td class="nowrap">{_time(row["created_at"])}</td></tr>'
        )
    return mark_safe("".join(lines))  # noqa: S308 (every part escaped)
