"""``manage.py kvstore_simulator``: run the local R-KVStore simulator in the foreground.

Only parses arguments: the server itself (``accounts_app.simulator``) is stdlib,
with no Django inside. Keys come from the flags, else the settings
``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` (read from the
environment), so the dashboard and the simulator agree on one key pair.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts_app.simulator import cli


class Command(BaseCommand):
    help = "Run the local simulator of Alibaba Cloud's R-KVStore API."
    # The simulator uses nothing of the project (no models, no URLs): it must start even
    # while the dashboard itself does not pass its checks.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        cli.build_parser(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        access_key_id = options["access_key_id"] or settings.ALIBABA_CLOUD_ACCESS_KEY_ID
        secret = options["access_key_secret"] or settings.ALIBABA_CLOUD_ACCESS_KEY_SECRET
        if not access_key_id or not secret:
            raise CommandError(
                "Set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (or pass "
                "--access-key-id and --access-key-secret)."
            )
        cli.serve(
            host=options["host"],
            port=options["port"],
            state_path=options["state"],
            access_key_id=access_key_id,
            access_key_secret=secret,
            activation_delay=options["activation_delay"],
        )
