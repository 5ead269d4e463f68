"""`{% load form_fields %}`: a form field with its label, messages and help, written out
in Python: the markup of templates/forms/_field.html, without a template include per
field (tests/test_form_rendering.py holds the two to the same bytes)."""

from __future__ import annotations

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

register = template.Library()


@register.simple_tag
def form_field(field) -> SafeString:
    errors = field.errors
    auto_id = conditional_escape(field.auto_id)
    optional = ""
    if not field.field.required:
        optional = f' <span class="muted">({conditional_escape(gettext("optional"))})</span>'
    error_list = ""
    if errors:
        items = "".join(f"<li>{conditional_escape(error)}</li>" for error in errors)
        error_list = f'<ul class="errorlist" id="{auto_id}_errors">{items}</ul>'
    help_text = ""
    if field.help_text:
        help_text = (
            f'<p class="help" id="{auto_id}_helptext">{conditional_escape(field.help_text)}</p>'
        )
    return mark_safe(  # noqa: S308 (every part escaped, the widget by its renderer)
        f'<div class="field{" has-error" if errors else ""}">\n'
        f'  <label for="{conditional_escape(field.id_for_label)}">'
        f"{conditional_escape(field.label)}{optional}</label>\n"
        f"  {field}\n"
        f'  <div class="field-error" id="{auto_id}-rule-msg" aria-live="polite"></div>\n'
        f"  {error_list}\n"
        f"  {help_text}\n"
        "</div>\n"
    )
