"""The instance picker: a text input that suggests instances as you type (a combobox).

Thousands of instances do not fit in a `<select>`: the page would carry them all, and
drawing it would cost a hundred milliseconds. The input asks the server for at most
MATCHES_SHOWN matches at a time (htmx, `instance_choices`); static/js/combobox.js adds
the keyboard and screen-reader behaviour of the WAI-ARIA combobox pattern
(https://www.w3.org/WAI/ARIA/apg/patterns/combobox/). Without JavaScript it is a plain
text input for the ID, checked on the server.

Written out in Python, as the rows of a long list: the standard library's escape is ten
times faster than Django's format_html machinery.
"""

from __future__ import annotations

from html import escape

from django import forms
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts_app import api_labels, rules
from accounts_app.models import Instance
from accounts_app.selectors.instances import blocker_messages, instance_by_id


class InstanceCombobox(forms.TextInput):
    """`purpose` "request": instances that can take an account, each with the facts
    rules.js checks; "filter": every instance, gone ones included (the audit log)."""

    def __init__(self, attrs=None, *, purpose: str = "request") -> None:
        super().__init__(attrs)
        self.purpose = purpose

    def render(self, name, value, attrs=None, renderer=None):
        final = self.build_attrs(self.attrs, attrs)
        field_id = final.get("id") or f"id_{name}"
        listbox = f"{field_id}-listbox"
        text = "" if value is None else str(value)
        final.update(
            {
                "type": "text",
                "name": name,
                "id": field_id,
                "value": text or None,
                "role": "combobox",
                "aria-autocomplete": "list",
                "aria-expanded": "false",
                "aria-controls": listbox,
                "autocomplete": "off",
                "autocapitalize": "none",
                "spellcheck": "false",
                "data-combobox": "",
                "hx-get": reverse("instance_choices") + f"?purpose={self.purpose}",
                "hx-trigger": "input changed delay:200ms, focus once",
                "hx-target": f"#{listbox}",
                "hx-swap": "innerHTML",
                "hx-include": "this",
                # Queued, never aborted: htmx logs every aborted request as a console error.
                "hx-sync": "this:queue last",
            }
        )
        if self.purpose == "request" and text:
            # After an error, or a copied request: the facts of the instance typed.
            instance = instance_by_id(text)
            if instance is not None:
                final.update(_facts(instance))
        help_id = f"{field_id}-combobox-help"
        final["aria-describedby"] = " ".join(filter(None, [final.get("aria-describedby"), help_id]))
        hint = gettext(
            "Type part of an ID, name, region or tag (or key:value), then choose with the "
            "arrow keys."
        )
        list_name = gettext("Matching instances")
        return mark_safe(  # noqa: S308 (every part escaped)
            f'<div class="combobox"><input{html_attrs(final)}>'
            f'<ul role="listbox" id="{escape(listbox)}" class="combobox-list" '
            f'aria-label="{escape(list_name)}" hidden></ul>'
            f'<p class="help" id="{escape(help_id)}">{escape(hint)}</p></div>'
        )


class InstanceField(forms.CharField):
    """The ID of a known instance, cleaned to the Instance (gone ones too: the form says
    why no account can be created there)."""

    widget = InstanceCombobox
    default_error_messages = {
        "unknown": _(
            "No instance has this ID: choose one from the suggestions, or copy its ID "
            "from the instances page."
        ),
    }

    def clean(self, value) -> Instance | None:
        text = super().clean(value)
        if not text:
            return None
        instance = instance_by_id(text)
        if instance is None:
            raise forms.ValidationError(self.error_messages["unknown"], code="unknown")
        return instance


def render_matches(instances: list[Instance], *, more: bool, purpose: str) -> SafeString:
    """The options of the listbox: one `<li role="option">` per instance."""
    options = [_option(instance, purpose) for instance in instances]
    if more:
        note = gettext("Only the first %(count)s matches are shown: type more to narrow them.")
        options.append(_note(note % {"count": len(instances)}))
    elif not instances:
        options.append(_note(gettext("No instance matches.")))
    return mark_safe("".join(options))  # noqa: S308 (every part escaped)


def _option(instance: Instance, purpose: str) -> str:
    attrs = {"role": "option", "data-value": instance.instance_id}
    blockers = []
    if purpose == "request":
        attrs.update(_facts(instance))
        blockers = blocker_messages(instance)
        if blockers:
            attrs["aria-disabled"] = "true"
    name = f" {instance.name}" if instance.name else ""
    region = api_labels.region_label(instance.region_id)
    label = f" ·{name} · {region} · Redis {instance.engine_version}"
    why = f'<span class="combobox-why"> — {escape("; ".join(blockers))}</span>' if blockers else ""
    return (
        f'<li{html_attrs(attrs)}><span class="combobox-value">{escape(instance.instance_id)}</span>'
        f"{escape(label)}{why}</li>"
    )


def _note(text: str) -> str:
    # Not an option: the keyboard skips it, a screen reader reads it with the list.
    return f'<li role="presentation" class="combobox-note">{escape(text)}</li>'


def _facts(instance: Instance) -> dict[str, str]:
    return rules.instance_option_attrs(
        architecture_type=instance.architecture_type,
        engine_version=instance.engine_version,
        instance_status=instance.status,
        account_count=instance.account_count or 0,
    )


def html_attrs(attrs: dict) -> str:
    """HTML attributes, escaped: `True` writes the bare name, `False` and `None` nothing."""
    return "".join(
        f" {name}" if value is True else f' {name}="{escape(str(value))}"'
        for name, value in attrs.items()
        if value is not False and value is not None
    )
