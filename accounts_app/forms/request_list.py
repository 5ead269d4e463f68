"""The request list's filters: read from the URL, so a filtered list can be shared."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts_app import rules
from accounts_app.models import AccountRequest
from accounts_app.selectors.request_list import RequestFilter


class RequestFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Any status")), *AccountRequest.Status.choices],
    )
    instance = forms.CharField(
        label=_("Instance ID or name"),
        required=False,
        max_length=128,
        widget=forms.TextInput(attrs={"type": "search"}),
    )
    requester = forms.CharField(label=_("Requester"), required=False, max_length=150)
    privilege = forms.ChoiceField(
        label=_("Privilege"),
        required=False,
        choices=[("", _("Any privilege")), *rules.PRIVILEGE_CHOICES],
    )
    date_from = forms.DateField(
        label=_("Requested from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("Requested until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"type": "search"}),
        help_text=_("Part of the account name, description, justification or instance."),
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def request_filter(self) -> RequestFilter:
        data = self.cleaned_data
        return RequestFilter(
            status=data["status"],
            instance=data["instance"].strip(),
            requester=data["requester"].strip(),
            privilege=data["privilege"],
            date_from=data["date_from"],
            date_to=data["date_to"],
            search=data["q"].strip(),
        )
