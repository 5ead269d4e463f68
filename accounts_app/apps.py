from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsAppConfig(AppConfig):
    name = "accounts_app"
    verbose_name = _("Redis accounts")

    def ready(self) -> None:
        from accounts_app import signals  # noqa: F401  (sign-in events go to the audit log)
