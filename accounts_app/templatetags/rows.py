"""`{% load rows %}`: the rows of the long tables, written out in Python.

Through the template language each cell costs a variable lookup, a filter and an
escape, and a hundred rows cost more than the rest of the page (docs/benchmarks.md).
Each function here writes the same markup its template did, escaping every value.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from urllib.parse import quote

from django import forms, template
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, gettext

from accounts_app import api_labels, rules, vpc_auth
from accounts_app.forms.instance_picker import html_attrs
from accounts_app.models import AccountRequest, KnownAccount
from accounts_app.selectors.fleet import progress_by_request
from accounts_app.translations import translated

register = template.Library()

# Labels by value (lazy, translated when shown): get_FOO_display() searches the field's
# choices for each row.
PRIVILEGE_LABELS = dict(rules.PRIVILEGE_CHOICES)
STATUS_LABELS = dict(AccountRequest.Status.choices)
DRIFT_LABELS = dict(KnownAccount.Drift.choices)


def url_maker(name: str, sentinel: str | int) -> Callable[[object], str]:
    """reverse(name, args=[value]) for many values, reversing once."""
    head, tail = reverse(name, args=[sentinel]).split(str(sentinel))
    return lambda value: f"{head}{quote(str(value))}{tail}"


def _label(labels: dict, value: str) -> str:
    return translated(labels, value)


def _time(value) -> str:
    if value is None:
        return ""
    local = timezone.localtime(value)
    return f'<time datetime="{local.isoformat()}">{local:%Y-%m-%d %H:%M}</time>'


@register.simple_tag
def request_rows(rows) -> SafeString:
    """The body of requests/_table.html: one row per request (instance and requester
    selected with it)."""
    request_url = url_maker("request_detail", 999_999_999)
    instance_url = url_maker("instance_detail", "instance-id")
    rows = list(rows)
    # Fleet requests: how many instances, and how far their runs got (one query, only
    # when the page lists one).
    fleets = [row.pk for row in rows if row.is_fleet]
    progress = progress_by_request(fleets) if fleets else {}
    lines = []
    for row in rows:
        instance_id = row.instance.instance_id
        instance = f'<a href="{escape(instance_url(instance_id))}">{escape(instance_id)}</a>'
        done = ""
        if row.pk in progress:
            instance = escape(gettext("%(count)s instances") % {"count": row.fleet_size})
            counts = progress[row.pk]
            done = f' <span class="muted" data-progress>{counts.done}/{counts.total}</span>'
        lines.append(
            f'<tr><td><a href="{request_url(row.pk)}">{row.pk}</a></td>'
            f"<td><code>{escape(row.account_name)}</code></td>"
            f"<td>{instance}</td>"
            f"<td>{escape(str(_label(PRIVILEGE_LABELS, row.account_privilege)))}</td>"
            f"<td>{escape(row.requester.get_username())}</td>"
            f'<td><span class="status status-{escape(row.status)}">'
            f"{escape(str(_label(STATUS_LABELS, row.status)))}</span>{done}</td>"
            f"<td>{_time(row.created_at)}</td></tr>"
        )
    return mark_safe("".join(lines))  # noqa: S308 (every part escaped)


@register.simple_tag
def instance_rows(rows, can_request: bool = False) -> SafeString:
    """The body of the instance list: one row per InstanceRow; with `can_request`, a
    link to the request form, prefilled, on each instance that can take an account."""
    detail_url = url_maker("instance_detail", "instance-id")
    warning = escape(str(vpc_auth.PASSWORD_FREE_WARNING))
    password_free = escape(gettext("Password-free VPC access is on"))
    yes = escape(gettext("Yes"))
    request_url = reverse("request_new") + "?instance_id="
    request_label = escape(gettext("Request an account"))
    request_title = gettext("Request an account on %(instance)s")
    lines = []
    for row in rows:
        instance = row.instance
        instance_id = escape(instance.instance_id)
        badges = "".join(
            f'<span class="badge badge-bad" data-reason>{escape(reason)}</span>'
            for reason in row.blockers
        )
        if row.password_free:
            badges += (
                f'<span class="badge badge-warn" data-warning title="{warning}">'
                f"{password_free}</span>"
            )
        if not row.blockers:
            badges += f'<span class="badge badge-ok">{yes}</span>'
            if can_request and not instance.is_gone:
                title = escape(request_title % {"instance": instance.instance_id})
                badges += (
                    f' <a class="button button-small" data-request-here '
                    f'href="{escape(request_url + quote(instance.instance_id))}" '
                    f'aria-label="{title}" title="{title}">{request_label}</a>'
                )
        architecture = api_labels.architecture_label(instance.architecture_type)
        status = api_labels.instance_status_label(instance.status)
        lines.append(
            f'<tr data-instance="{instance_id}">'
            f'<td><a href="{escape(detail_url(instance.instance_id))}"><code>{instance_id}'
            f"</code></a></td><td>{escape(instance.name)}{_tags(instance.tags)}</td>"
            f"<td>{escape(api_labels.region_label(instance.region_id))}</td>"
            f"<td>Redis {escape(instance.engine_version)}</td>"
            f"<td>{escape(str(architecture))}</td>"
            f'<td><span class="status">{escape(str(status))}</span></td>'
            f"<td>{escape(row.account_usage)}</td><td>{badges}</td></tr>"
        )
    return mark_safe("".join(lines))  # noqa: S308 (every part escaped)


@register.simple_tag
def created_account_rows(rows) -> SafeString:
    """The body of the created accounts table: one row per CreatedAccount (its request
    with the requester and the approving decisions, its instance)."""
    request_url = url_maker("request_detail", 999_999_999)
    instance_url = url_maker("instance_detail", "instance-id")
    overdue = escape(gettext("Overdue"))
    now = timezone.now()
    lines = []
    for row in rows:
        made, instance = row.request, row.instance
        instance_id = escape(instance.instance_id)
        name = f' <span class="muted">{escape(instance.name)}</span>' if instance.name else ""
        fleet = f' data-fleet="{made.pk}"' if made.is_fleet else ""
        approvers = ", ".join(escape(name) for name in made.approver_names) or "—"
        created = timezone.localtime(row.finished_at) if row.finished_at else None
        expires = made.account_expires_at
        expiry = "—"
        if expires is not None:
            local = timezone.localtime(expires)
            expiry = f'<time datetime="{local.isoformat()}">{local:%Y-%m-%d %H:%M}</time>'
            if made.is_overdue(now):
                expiry += f' <span class="badge badge-bad" data-overdue>{overdue}</span>'
        alibaba = row.alibaba_request_id
        lines.append(
            f'<tr data-request="{made.pk}" data-instance="{instance_id}"{fleet}>'
            f'<td><a href="{request_url(made.pk)}">#{made.pk}</a></td>'
            f'<td><a href="{escape(instance_url(instance.instance_id))}">{instance_id}</a>'
            f"{name}</td>"
            f"<td>{escape(api_labels.region_label(instance.region_id))}</td>"
            f"<td><code>{escape(made.account_name)}</code></td>"
            f"<td>{escape(str(_label(PRIVILEGE_LABELS, made.account_privilege)))}</td>"
            f"<td>{escape(made.account_description or '—')}</td>"
            f"<td>{escape(made.requester.get_username())}</td>"
            f"<td>{approvers}</td>"
            f'<td><time datetime="{created.isoformat() if created else ""}" class="nowrap">'
            f"{f'{created:%Y-%m-%d %H:%M} {created.tzname()}' if created else ''}</time></td>"
            f"<td data-expires>{expiry}</td>"
            f"<td>{f'<code>{escape(alibaba)}</code>' if alibaba else ''}</td></tr>"
        )
    return mark_safe("".join(lines))  # noqa: S308 (every part escaped)


@register.simple_tag
def drift_rows(rows) -> SafeString:
    """The body of the drift table: one row per drifting account (a named tuple of
    selectors.accounts.DRIFT_COLUMNS: its instance, and the request that created it with
    its requester), with what can be done about it: adopt an account made elsewhere, or
    request its deletion."""
    instance_url = url_maker("instance_detail", "instance-id")
    request_url = url_maker("request_detail", 999_999_999)
    new_request = reverse("request_new")
    adopt, delete = escape(gettext("Adopt")), escape(gettext("Request its deletion"))
    lines = []
    for row in rows:
        instance_id = row.instance__instance_id
        request_pk = row.created_by_id
        through = "—"
        if request_pk is not None:
            requester = escape(row.created_by__requester__username)
            through = f'<a href="{request_url(request_pk)}">#{request_pk}</a> · {requester}'
        actions = ""
        if not row.is_gone:
            account = f"instance_id={quote(instance_id)}&account_name={quote(row.account_name)}"
            if row.drift == KnownAccount.Drift.UNMANAGED:
                adopt_url = escape(f"{new_request}?kind=adopt&{account}")
                actions = f'<a class="action-adopt" href="{adopt_url}">{adopt}</a> · '
            delete_url = escape(f"{new_request}?kind=delete&{account}")
            actions += f'<a class="action-delete" href="{delete_url}">{delete}</a>'
        privilege = api_labels.privilege_label(row.privilege) if row.privilege else "—"
        lines.append(
            f'<tr data-account="{escape(row.account_name)}" data-drift="{escape(row.drift)}">'
            f'<td><a href="{escape(instance_url(instance_id))}">{escape(instance_id)}</a></td>'
            f"<td><code>{escape(row.account_name)}</code></td>"
            f'<td><span class="badge badge-warn">'
            f"{escape(str(_label(DRIFT_LABELS, row.drift)))}</span></td>"
            f"<td>{escape(str(privilege))}</td>"
            f"<td>{escape(row.description or '—')}</td>"
            f"<td>{through}</td><td>{_time(row.swept_at)}</td><td>{actions}</td></tr>"
        )
    return mark_safe("".join(lines))  # noqa: S308 (every part escaped)


@register.simple_tag
def known_account_rows(accounts) -> SafeString:
    """The body of an instance's accounts table: one row per KnownAccount the sweep saw,
    with the request that made it (selectors.accounts.instance_with_accounts)."""
    request_url = url_maker("request_detail", 999_999_999)
    yes, no, gone = escape(gettext("yes")), escape(gettext("no")), escape(gettext("Gone"))
    first_seen, overdue = escape(gettext("first seen")), escape(gettext("Overdue"))
    now = timezone.now()
    lines = []
    for known in accounts:
        made = known.created_by
        name = f"<code>{escape(known.account_name)}</code>"
        if known.account_type == "Super":
            kind = escape(str(api_labels.account_type_label(known.account_type)))
            name += f' <span class="muted">({kind})</span>'
        privilege = "—"
        if known.privilege:
            label = escape(str(api_labels.privilege_label(known.privilege)))
            privilege = f'{label} <span class="muted">({escape(known.privilege)})</span>'
        status = gone
        if not known.is_gone:
            badge = "badge-ok" if known.status == "Available" else "badge-warn"
            label = escape(str(api_labels.account_status_label(known.status)))
            status = f'<span class="badge {badge}">{label}</span>'
        if made is not None:
            created = f'<a href="{request_url(made.pk)}">#{made.pk}</a>, {_time(made.finished_at)}'
        else:
            created = f'<span class="muted">{first_seen} {_time(known.first_seen_at)}</span>'
        expires = "—"
        if made is not None and made.account_expires_at:
            expires = _time(made.account_expires_at)
            if made.is_overdue(now):
                expires += f' <span class="badge badge-bad" data-overdue>{overdue}</span>'
        drift = "—"
        if known.drift:
            label = escape(str(_label(DRIFT_LABELS, known.drift)))
            drift = f'<span class="badge badge-warn">{label}</span>'
        lines.append(
            f'<tr data-account="{escape(known.account_name)}"><td>{name}</td>'
            f"<td>{yes if made else no}</td>"
            f"<td>{escape(made.requester.get_username()) if made else '—'}</td>"
            f"<td>{privilege}</td><td>{status}</td>"
            f"<td>{escape(known.description or '—')}</td><td>{created}</td>"
            f"<td data-expires>{expires}</td><td>{drift}</td></tr>"
        )
    return mark_safe("".join(lines))  # noqa: S308 (every part escaped)


def _tags(tags: dict) -> str:
    """An instance's tags under its name, as `key:value`: what the search box takes."""
    if not tags:
        return ""
    chips = "".join(
        f'<span class="tag">{escape(str(key))}:{escape(str(value))}</span>'
        for key, value in sorted(tags.items())
    )
    return f'<div class="tags">{chips}</div>'


@register.simple_tag
def select_field(field) -> SafeString:
    """A `<select>` with its attributes as Django gives them (required, aria-invalid),
    its options written out here: Django's Select widget renders a template per option,
    and the time zones are hundreds."""
    current = "" if field.value() is None else str(field.value())
    options = "".join(
        f"{start}{' selected' if value == current else ''}{rest}"
        for value, start, rest in _options(field.field.widget.choices)
    )
    attrs = {"name": field.html_name, **field.build_widget_attrs(field.field.widget.attrs)}
    attrs["id"] = field.auto_id
    return mark_safe(f"<select{html_attrs(attrs)}>{options}</select>")  # noqa: S308 (escaped)


def _options(choices) -> list[tuple[str, str, str]]:
    """Each choice as (its value, its <option> up to where " selected" goes, the rest),
    in the current language. Choices a cached function gives (``choices=`` such a
    function) are one list for the process's life: theirs are written once per language
    (the audit page's 34 actions, each label translated and escaped on every view, were
    a quarter of its filter form's time: docs/benchmarks.md, eighth round)."""
    source = getattr(choices, "func", None)  # CallableChoiceIterator's
    if not hasattr(source, "cache_info"):
        return _written_options(choices)
    key = (source, get_language())
    if key not in _OPTIONS_WRITTEN:
        _OPTIONS_WRITTEN[key] = _written_options(choices)
    return _OPTIONS_WRITTEN[key]


_OPTIONS_WRITTEN: dict[tuple, list[tuple[str, str, str]]] = {}


def _written_options(choices) -> list[tuple[str, str, str]]:
    return [
        (str(value), f'<option value="{escape(str(value))}"', f">{escape(str(label))}</option>")
        for value, label in choices
    ]


@register.simple_tag
def filter_fields(fields) -> SafeString:
    """A filter form's fields, each with its label and errors: selects and plain inputs
    written out here, any other widget rendered by Django."""
    parts = []
    for field in fields:
        control = select_field(field) if field.widget_type == "select" else plain_input(field)
        errors = str(field.errors) if field.errors else ""
        css = "field has-error" if field.errors else "field"
        parts.append(
            f'<div class="{css}"><label for="{escape(field.id_for_label)}">'
            f"{escape(str(field.label))}</label>{control}{errors}</div>"
        )
    return mark_safe("".join(parts))  # noqa: S308 (every part escaped, or Django's)


@register.simple_tag
def plain_input(field) -> SafeString:
    """A text, date or checkbox input written out here; any other widget by Django."""
    widget = field.field.widget
    if type(widget) not in PLAIN_INPUTS:
        return field.as_widget()
    attrs = {"type": widget.input_type, "name": field.html_name}
    if isinstance(widget, forms.CheckboxInput):
        attrs["checked"] = widget.check_test(field.value())
    else:
        attrs["value"] = widget.format_value(field.value())
    attrs.update(field.build_widget_attrs(widget.attrs))
    attrs["id"] = field.auto_id
    return mark_safe(f"<input{html_attrs(attrs)}>")  # noqa: S308 (every part escaped)


PLAIN_INPUTS = (forms.TextInput, forms.DateInput, forms.CheckboxInput)
