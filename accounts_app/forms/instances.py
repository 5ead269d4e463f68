"""The instance list's filter form."""

from __future__ import annotations

from dataclasses import fields

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts_app import api_labels
from accounts_app.forms.paging import PageSized
from accounts_app.selectors.instances import InstanceFilter

# A page of the list, as on the other lists: 50 unless the reader asks for more or fewer.
PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50


class InstanceFilterForm(PageSized, forms.Form):
    DEFAULT_PAGE_SIZE = DEFAULT_PAGE_SIZE

    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=128,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": _("ID, name, region, tag or key:value"),
                "autocomplete": "off",
            }
        ),
    )
    region = forms.ChoiceField(label=_("Region"), required=False)
    engine = forms.ChoiceField(label=_("Engine"), required=False)
    architecture = forms.ChoiceField(label=_("Architecture"), required=False)
    status = forms.ChoiceField(label=_("Status"), required=False)
    gone = forms.BooleanField(label=_("Include gone instances"), required=False)
    size = forms.TypedChoiceField(
        label=_("Per page"),
        required=False,
        coerce=int,
        empty_value=None,
        choices=[(size, size) for size in PAGE_SIZES],
    )

    # The API's values, shown under their translated names (accounts_app.api_labels).
    CHOICE_LABELS = {
        "architecture": api_labels.architecture_label,
        "status": api_labels.instance_status_label,
        "region": api_labels.region_label,
    }

    def __init__(self, data, *, choices: dict[str, list[str]]) -> None:
        super().__init__(data)
        for name, values in choices.items():
            label = self.CHOICE_LABELS.get(name, str)
            self.fields[name].choices = [
                ("", _("Any")),
                *((value, label(value)) for value in values),
            ]

    def instance_filter(self) -> InstanceFilter:
        return InstanceFilter(**{f.name: self.cleaned_data[f.name] for f in fields(InstanceFilter)})
