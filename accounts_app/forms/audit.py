"""The audit page's filter form: read from the URL, so a filtered view can be shared."""

from __future__ import annotations

from functools import cache

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

from accounts_app.forms.instance_picker import InstanceCombobox
from accounts_app.forms.paging import PageSized
from accounts_app.models import AuditEvent
from accounts_app.rules import PRIVILEGE_CHOICES as PRIVILEGES
from accounts_app.selectors.audit import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MAX_SEQ,
    MIN_PAGE_SIZE,
    OFFERED_PAGE_SIZES,
    AuditFilter,
    CreatedFilter,
)

PAGE_SIZE_CHOICES = [(n, n) for n in OFFERED_PAGE_SIZES]


# Callables, cached: every form Django builds deep-copies its fields' choices (a copied
# list of 34 actions cost the audit page about 0.3 ms); one list is shared, and the
# select_field tag writes a cached function's options once per language.
@cache
def action_choices() -> list:
    return [("", _("Any action")), *AuditEvent.Action.choices]


@cache
def outcome_choices() -> list:
    return [("", _("Any outcome")), *AuditEvent.Outcome.choices]


class AuditFilterForm(PageSized, forms.Form):
    DEFAULT_PAGE_SIZE = DEFAULT_PAGE_SIZE

    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    actor = forms.CharField(label=_("Actor"), required=False, max_length=150)
    action = forms.ChoiceField(
        label=_("Action"),
        required=False,
        choices=action_choices,
    )
    instance_id = forms.CharField(
        label=_("Instance"),
        required=False,
        max_length=64,
        widget=InstanceCombobox(purpose="filter"),
    )
    account_name = forms.CharField(label=_("Account name"), required=False, max_length=64)
    outcome = forms.ChoiceField(
        label=_("Outcome"),
        required=False,
        choices=outcome_choices,
    )
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=64,
        # Explained once, under the form, with the time zone.
        widget=forms.TextInput(attrs={"type": "search"}),
    )
    # A quick filter, drawn apart from the others as a toggle (kept in the URL).
    hide_sign_ins = forms.BooleanField(label=_("Hide sign-ins"), required=False)
    size = forms.IntegerField(
        label=_("Per page"),
        required=False,
        validators=[MinValueValidator(MIN_PAGE_SIZE), MaxValueValidator(MAX_PAGE_SIZE)],
        widget=forms.Select(choices=PAGE_SIZE_CHOICES),
    )
    # The page cursors: read from the URL, never rendered, so that changing a
    # filter starts again from the newest events.
    before = forms.IntegerField(required=False, min_value=0, max_value=MAX_SEQ)
    after = forms.IntegerField(required=False, min_value=0, max_value=MAX_SEQ)

    CURSOR_FIELDS = ("before", "after")
    TOGGLES = ("hide_sign_ins",)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("The end date is before the start date."))
        if cleaned.get("before") is not None and cleaned.get("after") is not None:
            raise forms.ValidationError(_("Use either before or after, not both."))
        return cleaned

    def filter_fields(self):
        """The visible filter fields, in display order (the cursors excluded)."""
        return [
            self[name] for name in self.fields if name not in (*self.CURSOR_FIELDS, *self.TOGGLES)
        ]

    def audit_filter(self) -> AuditFilter:
        data = self.cleaned_data
        return AuditFilter(
            date_from=data["date_from"],
            date_to=data["date_to"],
            actor=data["actor"],
            action=data["action"],
            instance_id=data["instance_id"],
            account_name=data["account_name"],
            outcome=data["outcome"],
            q=data["q"],
            hide_sign_ins=data["hide_sign_ins"],
        )


class CreatedAccountsFilterForm(forms.Form):
    """The created-accounts page's filters, read from the URL like the audit log's."""

    instance = forms.CharField(
        label=_("Instance"),
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"placeholder": _("ID or name")}),
    )
    requester = forms.CharField(label=_("Requester"), required=False, max_length=150)
    privilege = forms.ChoiceField(
        label=_("Privilege"), required=False, choices=[("", _("Any privilege")), *PRIVILEGES]
    )
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"type": "search"}),
    )
    # Never rendered: changing a filter starts again from the first page.
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def filter_fields(self):
        return [self[name] for name in self.fields if name != "page"]

    def created_filter(self) -> CreatedFilter:
        data = self.cleaned_data
        return CreatedFilter(
            instance=data["instance"].strip(),
            requester=data["requester"].strip(),
            privilege=data["privilege"],
            date_from=data["date_from"],
            date_to=data["date_to"],
            q=data["q"].strip(),
        )

    def page_number(self) -> int:
        return self.cleaned_data.get("page") or 1
