"""The drift page's filters."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts_app.forms.rendering import WIDGET_WRITER
from accounts_app.models import KnownAccount


class DriftFilterForm(forms.Form):
    default_renderer = WIDGET_WRITER

    instance_id = forms.CharField(label=_("Instance"), required=False, max_length=64)
    drift = forms.ChoiceField(
        label=_("Drift"),
        required=False,
        choices=[("", _("Every kind")), *KnownAccount.Drift.choices],
    )

    def filters(self) -> dict[str, str]:
        if not self.is_valid():
            return {"instance_id": "", "drift": ""}
        return {
            "instance_id": self.cleaned_data["instance_id"].strip(),
            "drift": self.cleaned_data["drift"],
        }
