"""Form widgets written out in Python: the same markup as Django's widget templates.

Django renders each widget through a template (a select, one more per option), and a
form of nine fields spent more time there than in the rest of its page
(docs/benchmarks.md). WidgetWriter writes the inputs, selects and textareas those
templates would, byte for byte (tests/test_form_rendering.py compares them), and hands
any other widget to the templates.
"""

from __future__ import annotations

from html import escape

from django.forms.renderers import DjangoTemplates
from django.utils.html import conditional_escape

_WIDGETS = "django/forms/widgets/"
# The widgets whose template is only django/forms/widgets/input.html.
_INPUTS = {
    f"{_WIDGETS}{name}.html"
    for name in ("text", "number", "date", "datetime", "time", "email", "url", "password")
}


def _attrs(attrs: dict) -> str:
    """django/forms/widgets/attrs.html: True alone, False left out."""
    return "".join(
        f" {escape(str(name))}" if value is True else f' {escape(str(name))}="{escape(str(value))}"'
        for name, value in attrs.items()
        if value is not False
    )


def _input(widget: dict) -> str:
    value = "" if widget["value"] is None else f' value="{escape(str(widget["value"]))}"'
    return (
        f'<input type="{escape(str(widget["type"]))}" name="{escape(widget["name"])}"'
        f"{value}{_attrs(widget['attrs'])}>"
    )


def _select(widget: dict) -> str | None:
    options = []
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            return None  # optgroups: the templates write those
        options += [
            f'\n  <option value="{escape(str(option["value"]))}"{_attrs(option["attrs"])}>'
            f"{conditional_escape(option['label'])}</option>\n"
            for option in group_choices
        ]
    return (
        f'<select name="{escape(widget["name"])}"{_attrs(widget["attrs"])}>'
        f"{''.join(options)}\n</select>"
    )


def _textarea(widget: dict) -> str:
    value = conditional_escape(widget["value"]) if widget["value"] else ""
    name = escape(widget["name"])
    return f'<textarea name="{name}"{_attrs(widget["attrs"])}>\n{value}</textarea>'


class WidgetWriter(DjangoTemplates):
    """A form renderer (a form's `default_renderer`) that writes the plain widgets."""

    def render(self, template_name, context, request=None):
        widget = context.get("widget")
        written = None
        if widget is not None:
            if template_name in _INPUTS:
                written = _input(widget)
            elif template_name == f"{_WIDGETS}select.html":
                written = _select(widget)
            elif template_name == f"{_WIDGETS}textarea.html":
                written = _textarea(widget)
        if written is None:
            return super().render(template_name, context, request)
        return written


# One for every form that uses it: a renderer builds its template engine once.
WIDGET_WRITER = WidgetWriter()
