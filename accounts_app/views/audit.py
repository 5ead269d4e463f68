"""The audit log page, its streamed export, and the list of created accounts."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterable, Iterator
from html import escape

from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from accounts_app import roles
from accounts_app.api_labels import privilege_label, region_label
from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import event_text, message
from accounts_app.audit.messages import render as render_message
from accounts_app.forms.audit import AuditFilterForm
from accounts_app.models import AuditEvent
from accounts_app.selectors import audit as audit_selectors


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


def event_rows(events: list[AuditEvent]) -> SafeString:
    """The table rows of one page, as HTML.

    The one place this app writes markup in Python, for speed: a page has 10 ms
    in all, and 50 rows of 13 cells cost the template engine 1.9 ms (17 ms with
    get_FOO_display(), which rebuilds and translates the choices on every call),
    an f-string per row 0.1 ms. Every value goes through escape().
    """
    action_labels = {value: str(label) for value, label in AuditEvent.Action.choices}
    outcome_labels = {value: str(label) for value, label in AuditEvent.Outcome.choices}
    zone = timezone.get_current_timezone()
    return mark_safe(  # noqa: S308 - every value below is escaped
        "\n".join(_event_row(e, zone, action_labels, outcome_labels) for e in events)
    )


def _event_row(event: AuditEvent, zone, action_labels: dict, outcome_labels: dict) -> str:
    local = event.created_at.astimezone(zone)
    request_link = (
        f'<a href="{reverse("request_detail", args=[event.request_id])}">#{event.request_id}</a>'
        if event.request_id
        else ""
    )
    region = escape(region_label(event.region_id))
    instance = (
        f'{_code(event.instance_id)} <span class="muted">{region}</span>'
        if event.instance_id
        else ""
    )
    action = action_labels.get(event.action, event.action)
    outcome = outcome_labels.get(event.outcome, event.outcome)
    badge = OUTCOME_BADGES.get(event.outcome, "badge-bad")
    cells = [
        str(event.seq),
        f'<time datetime="{local.isoformat(timespec="seconds")}">'
        f"{local.strftime('%Y-%m-%d %H:%M:%S')}</time>",
        escape(event.actor_name or "—"),
        escape(action),
        request_link,
        instance,
        _code(event.account_name),
        # The label in the reader's language, and the API's own code as evidence.
        escape(f"{privilege_label(event.account_privilege)} ({event.account_privilege})")
        if event.account_privilege
        else "",
        f'<span class="badge {badge}">{escape(outcome)}</span>',
        _code(event.alibaba_request_id),
        _code(event.error_code),
        # The system's message in the reader's language, then what a user typed.
        escape(event_text(event)),
        escape(event.source_ip or ""),
    ]
    return "<tr><td>" + "</td><td>".join(cells) + "</td></tr>"


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
    rows = audit_selectors.export_rows(audit_filter)
    response = StreamingHttpResponse(
        _in_language(language, render_rows(rows, language)), content_type=content_type
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


# Spreadsheets run a cell that starts with one of these as a formula; a
# comment or account name typed by a user must not become one.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Rows per chunk of the streamed export: one write to the socket per chunk, not per row
# (a million writes cost more than the rows themselves).
EXPORT_CHUNK_ROWS = 1_000


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


def csv_lines(rows: Iterable[tuple], language: str) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    columns = (*audit_selectors.EXPORT_FIELDS, message_column(language))
    writer.writerow(columns)
    typed = [index for index, name in enumerate(columns) if name not in WRITTEN_BY_THE_APP]
    for chunk in itertools.batched(rows, EXPORT_CHUNK_ROWS):
        # csv writes None as an empty cell and numbers as digits by itself.
        writer.writerows(_defused(_with_message(row), typed) for row in chunk)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def _defused(row: tuple, typed: list[int]) -> tuple | list:
    """The row, with a quote before each typed cell a spreadsheet would run."""
    cells = None
    for index in typed:
        value = row[index]
        if value and value.startswith(FORMULA_STARTS):
            cells = cells or list(row)
            cells[index] = "'" + value
    return cells or row


def jsonl_lines(rows: Iterable[tuple], language: str) -> Iterator[str]:
    fields = (*audit_selectors.EXPORT_FIELDS, message_column(language))
    for row in rows:
        record = dict(zip(fields, _with_message(row), strict=True))
        yield json.dumps(record, ensure_ascii=False, default=_json_value) + "\n"


def _json_value(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def excel_csv_lines(rows: Iterable[tuple], language: str) -> Iterator[str]:
    """The CSV with a byte order mark first: Excel reads a CSV without one in the
    system's code page (GBK on Chinese Windows), and every non-ASCII cell as mojibake."""
    yield "\ufeff"
    yield from csv_lines(rows, language)


EXPORT_FORMATS = {
    "csv": ("text/csv; charset=utf-8", csv_lines),
    "excel.csv": ("text/csv; charset=utf-8", excel_csv_lines),
    "jsonl": ("application/x-ndjson; charset=utf-8", jsonl_lines),
}


CREATED_ACCOUNTS_PAGE_SIZE = 50


@roles.role_required(roles.VIEW_EVERYTHING)
@require_GET
def created_accounts(request):
    before = request.GET.get("before", "")
    # isdigit() alone lets "²" and 5,000-digit numbers through to int(): a 500.
    cursor = int(before) if before.isascii() and before.isdigit() and len(before) < 19 else None
    rows, next_before = audit_selectors.created_accounts(
        before=cursor, size=CREATED_ACCOUNTS_PAGE_SIZE
    )
    return render(
        request,
        "audit/created_accounts.html",
        {"rows": rows, "next_before": next_before, "is_first_page": not before},
    )
