"""The audit log page, its streamed export, and the list of created accounts."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from datetime import UTC
from html import escape
from urllib.parse import urlencode

from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone, translation
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from accounts_app import roles
from accounts_app.api_labels import privilege_label, region_label
from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import event_text, message
from accounts_app.audit.messages import render as render_message
from accounts_app.forms.audit import AuditFilterForm, CreatedAccountsFilterForm
from accounts_app.models import AuditEvent
from accounts_app.selectors import audit as audit_selectors
from accounts_app.templatetags.rows import url_maker
from accounts_app.translations import all_translated
from accounts_app.views.csv_cells import csv_text


@roles.role_required(roles.VIEW_EVERYTHING)
@require_GET
@vary_on_headers("HX-Request")
def audit_log(request):
    form = AuditFilterForm(request.GET)
    page = rows = None
    if form.is_valid():
        page = audit_selectors.event_page(
            form.audit_filter(),
            before=form.cleaned_data["before"],
            after=form.cleaned_data["after"],
            size=form.page_size(),
        )
        rows = event_rows(page.events)
    template = "audit/log.html"
    # A history restore needs the whole page, although htmx asks for it.
    if request.htmx and not request.htmx.history_restore_request:
        template += "#results"
    return render(request, template, {"form": form, "page": page, "rows": rows})


OUTCOME_BADGES = {
    AuditEvent.Outcome.SUCCESS: "badge-ok",
    AuditEvent.Outcome.UNKNOWN: "badge-warn",
}


ACTION_LABELS = dict(AuditEvent.Action.choices)
OUTCOME_LABELS = dict(AuditEvent.Outcome.choices)


def event_rows(events: list[audit_selectors.EventRow]) -> SafeString:
    """The table rows of one page, as HTML.

    The one place this app writes markup in Python, for speed: a page has 10 ms
    in all, and 50 rows of 13 cells cost the template engine 1.9 ms (17 ms with
    get_FOO_display(), which rebuilds and translates the choices on every call),
    an f-string per row 0.1 ms. Every value goes through escape().
    """
    action_labels = all_translated(ACTION_LABELS)
    outcome_labels = all_translated(OUTCOME_LABELS)
    zone = timezone.get_current_timezone()
    request_url = url_maker("request_detail", 999_999_999)
    return mark_safe(  # noqa: S308 - every value below is escaped
        "\n".join(_event_row(e, zone, action_labels, outcome_labels, request_url) for e in events)
    )


def _event_row(
    event: audit_selectors.EventRow, zone, action_labels: dict, outcome_labels: dict, request_url
) -> str:
    # One line per event (issue 21: ~15 events on a laptop's screen): a long value is cut
    # with an ellipsis, whole in its title; the comment opens in full under the pointer
    # or the keyboard's focus (tabindex).
    local = event.created_at.astimezone(zone)
    request_link = (
        f'<a href="{request_url(event.request_id)}">#{event.request_id}</a>'
        if event.request_id
        else ""
    )
    region = escape(region_label(event.region_id))
    instance = (
        f'<td title="{escape(event.instance_id)} · {region}">{_code(event.instance_id)}</td>'
        if event.instance_id
        else "<td></td>"
    )
    action = escape(action_labels.get(event.action, event.action))
    outcome = outcome_labels.get(event.outcome, event.outcome)
    badge = OUTCOME_BADGES.get(event.outcome, "badge-bad")
    privilege = ""
    if event.account_privilege:
        # The label in the reader's language, and the API's own code as evidence.
        label = escape(privilege_label(event.account_privilege))
        privilege = f'<td title="{label} ({escape(event.account_privilege)})">{label}</td>'
    # The system's message in the reader's language, then what a user typed.
    comment = escape(event_text(event))
    comment_cell = (
        f'<td class="comment" tabindex="0" title="{comment}">{comment}</td>'
        if comment
        else "<td></td>"
    )
    actor = escape(event.actor_name or "—")
    return (
        f"<tr><td>{event.seq}</td>"
        f'<td><time datetime="{local.isoformat(timespec="seconds")}">'
        f"{local.strftime('%Y-%m-%d %H:%M:%S')}</time></td>"
        f'<td title="{actor}">{actor}</td><td title="{action}">{action}</td>'
        f"<td>{request_link}</td>{instance}"
        f"{_titled_code(event.account_name)}{privilege or '<td></td>'}"
        f'<td><span class="badge {badge}">{escape(outcome)}</span></td>'
        f"{_titled_code(event.alibaba_request_id)}{_titled_code(event.error_code)}"
        f"{comment_cell}{_titled(escape(event.source_ip or ''))}</tr>"
    )


def _titled(html: str) -> str:
    return f'<td title="{html}">{html}</td>' if html else "<td></td>"


def _titled_code(value: str) -> str:
    return f'<td title="{escape(value)}">{_code(value)}</td>' if value else "<td></td>"


def _code(value: str) -> str:
    return f"<code>{escape(value)}</code>" if value else ""


@roles.role_required(roles.VIEW_EVERYTHING)
@require_GET
def audit_export(request, fmt: str):
    if fmt not in EXPORT_FORMATS:
        raise Http404
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text(), content_type="text/plain")
    audit_filter = form.audit_filter()
    # Recorded before the first byte: an export that cannot be audited never starts.
    record_event(
        action=AuditEvent.Action.EXPORT_DOWNLOADED,
        outcome=AuditEvent.Outcome.SUCCESS,
        origin=Origin.from_request(request),
        message=_export_message(fmt, audit_filter.describe()),
    )
    content_type, render_rows = EXPORT_FORMATS[fmt]
    language = translation.get_language()
    batches = audit_selectors.export_batches(audit_filter)
    response = StreamingHttpResponse(
        _in_language(language, render_rows(batches, language)), content_type=content_type
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    # The system's messages are in the reader's language: the file and its headers say which.
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}-{language}.{fmt}"'
    response["Content-Language"] = language
    return response


def _in_language(language: str, chunks: Iterator[str]) -> Iterator[str]:
    """The chunks, rendered in `language` whenever the server iterates them (after the
    view has returned, when the request's language may no longer be active)."""
    with translation.override(language):
        yield from chunks


def _export_message(fmt: str, filters: str):
    if filters:
        return message("export.filtered", format=fmt.upper(), filters=filters)
    return message("export.all", format=fmt.upper())


# The fields whose values the app writes itself (numbers, its own time stamps, its codes,
# hashes): no user-typed text, so no cell of theirs can start a formula.
WRITTEN_BY_THE_APP = frozenset(
    {"seq", "created_at", "request_id", "action", "outcome", "message_id", "prev_hash", "hash"}
)


def message_column(language: str) -> str:
    """The export's column of messages, named with the language they are written in."""
    return f"message_{language}"


def _with_message(row: tuple) -> tuple:
    # EXPORT_FIELDS ends with message_id, message_params.
    return (*row, render_message(row[-2], row[-1]))


def csv_lines(batches: Iterable[list[tuple]], language: str) -> Iterator[str]:
    """The header, then a chunk of CSV per batch of rows: one write to the socket per
    batch, not per row (a million writes cost more than the rows themselves)."""
    columns = (*audit_selectors.EXPORT_FIELDS, message_column(language))
    typed = {index for index, name in enumerate(columns) if name not in WRITTEN_BY_THE_APP}
    yield csv_text([[name] for name in columns], ())
    for rows in batches:
        # EXPORT_FIELDS ends with message_id, message_params.
        *cells, message_ids, message_params = zip(*rows, strict=True)
        if any(message_ids):
            messages = list(map(render_message, message_ids, message_params))
        else:
            messages = [""] * len(rows)
        yield csv_text([*cells, message_ids, message_params, messages], typed)


def jsonl_lines(batches: Iterable[list[tuple]], language: str) -> Iterator[str]:
    fields = (*audit_selectors.EXPORT_FIELDS, message_column(language))
    for row in itertools.chain.from_iterable(batches):
        record = dict(zip(fields, _with_message(row), strict=True))
        yield json.dumps(record, ensure_ascii=False, default=_json_value) + "\n"


def _json_value(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def excel_csv_lines(batches: Iterable[list[tuple]], language: str) -> Iterator[str]:
    """The CSV with a byte order mark first: Excel reads a CSV without one in the
    system's code page (GBK on Chinese Windows), and every non-ASCII cell as mojibake."""
    yield "\ufeff"
    yield from csv_lines(batches, language)


EXPORT_FORMATS = {
    "csv": ("text/csv; charset=utf-8", csv_lines),
    "excel.csv": ("text/csv; charset=utf-8", excel_csv_lines),
    "jsonl": ("application/x-ndjson; charset=utf-8", jsonl_lines),
}


CREATED_ACCOUNTS_PAGE_SIZE = 50


@roles.role_required(roles.VIEW_EVERYTHING)
@require_GET
@vary_on_headers("HX-Request")
def created_accounts(request):
    form = CreatedAccountsFilterForm(request.GET)
    rows, has_next = [], False
    if form.is_valid():
        rows, has_next = audit_selectors.created_account_page(
            form.created_filter(), page=form.page_number(), size=CREATED_ACCOUNTS_PAGE_SIZE
        )
    template = "audit/created_accounts.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#results"
    context = {"form": form, "rows": rows, "has_next": has_next}
    context["page_number"] = form.page_number() if form.is_valid() else 1
    return render(request, template, context)


@roles.role_required(roles.VIEW_EVERYTHING)
@require_GET
def created_accounts_export(request, fmt: str):
    if fmt not in CREATED_EXPORT_FORMATS:
        raise Http404
    form = CreatedAccountsFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text(), content_type="text/plain")
    created_filter = form.created_filter()
    filters = urlencode(created_filter.as_query())
    record_event(
        action=AuditEvent.Action.EXPORT_DOWNLOADED,
        outcome=AuditEvent.Outcome.SUCCESS,
        origin=Origin.from_request(request),
        message=message("export.created_filtered", format=fmt.upper(), filters=filters)
        if filters
        else message("export.created_all", format=fmt.upper()),
    )
    language = translation.get_language()
    rows = created_csv_lines(audit_selectors.created_account_export(created_filter))
    if fmt == "excel.csv":
        rows = itertools.chain(["\ufeff"], rows)
    response = StreamingHttpResponse(
        _in_language(language, rows), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="created-accounts-{stamp}.{fmt}"'
    return response


CREATED_EXPORT_FORMATS = ("csv", "excel.csv")
# Rows per chunk of the streamed export: one write to the socket per chunk, not per row.
CREATED_EXPORT_CHUNK_ROWS = 1_000
CREATED_EXPORT_FIELDS = (
    "request_id",
    "instance_id",
    "instance_name",
    "region_id",
    "account_name",
    "account_privilege",
    "account_description",
    "requester",
    "approvers",
    "created_at",
    "alibaba_request_id",
)


def created_csv_lines(accounts: Iterable) -> Iterator[str]:
    """The created accounts as CSV, a chunk per 1,000 rows; typed cells defused."""
    yield csv_text([[name] for name in CREATED_EXPORT_FIELDS], ())
    typed = range(1, 9)  # everything but the request's number, the time, the RequestId
    for chunk in itertools.batched(accounts, CREATED_EXPORT_CHUNK_ROWS):
        yield csv_text(zip(*map(_created_row, chunk), strict=True), typed)


def _created_row(account) -> tuple:
    request = account.request
    return (
        request.pk,
        account.instance.instance_id,
        account.instance.name,
        account.instance.region_id,
        request.account_name,
        request.account_privilege,
        request.account_description,
        request.requester.get_username(),
        " ".join(request.approver_names),
        account.finished_at.astimezone(UTC).isoformat() if account.finished_at else "",
        account.alibaba_request_id,
    )
