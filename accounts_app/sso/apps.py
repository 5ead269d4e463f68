from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SsoConfig(AppConfig):
    # An app of its own so that allauth's provider registry finds provider.py here.
    name = "accounts_app.sso"
    label = "sso"
    verbose_name = _("Single sign-on")
