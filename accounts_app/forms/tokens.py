"""A new personal API token: its name, scopes and lifetime."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext_lazy as _

SCOPE_CHOICES = [
    ("read", _("read: instances and the requests you may see")),
    ("request", _("request: submit and cancel your requests")),
    ("approve", _("approve: approve and reject others' requests")),
    ("execute", _("execute: create the account of your approved request")),
    ("audit", _("audit: the audit log and created accounts")),
]


class ApiTokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"), choices=SCOPE_CHOICES, widget=forms.CheckboxSelectMultiple
    )
    expires_in_days = forms.IntegerField(label=_("Expires in (days)"), initial=90)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["expires_in_days"].validators += [
            MinValueValidator(1),
            MaxValueValidator(settings.API_TOKEN_MAX_DAYS),
        ]
