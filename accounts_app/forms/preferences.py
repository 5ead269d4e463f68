"""The user's preferences."""

from __future__ import annotations

import zoneinfo
from functools import cache

from django import forms
from django.utils.translation import gettext_lazy as _


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class PreferencesForm(forms.Form):
    # A callable: every form Django builds deep-copies its fields, and a copied list of
    # 600 time zones cost the preferences page a millisecond; the callable's one list is
    # shared.
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices)
