"""Expire pending requests and approvals whose time is up, and tell their requesters."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from accounts_app.services.workflow import expire_requests


class Command(BaseCommand):
    help = "Mark stale pending requests and unused approvals as expired."

    def handle(self, *args, **options):
        count = expire_requests()
        self.stdout.write(f"{count} request(s) expired")
