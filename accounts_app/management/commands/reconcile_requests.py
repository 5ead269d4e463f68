"""Settle every request whose CreateAccount outcome is unknown, using DescribeAccounts."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from accounts_app.models import AccountRequest
from accounts_app.services.fleet import fleet_reconcile_stuck
from accounts_app.services.workflow import reconcile_all


class Command(BaseCommand):
    help = "Reconcile requests of unknown outcome with DescribeAccounts."

    def handle(self, *args, **options):
        results = reconcile_all() + fleet_reconcile_stuck()
        for account_request in results:
            self.stdout.write(f"request #{account_request.pk}: {account_request.status}")
        waiting = sum(1 for r in results if r.status == AccountRequest.Status.NEEDS_RECONCILIATION)
        self.stdout.write(f"{len(results)} checked, {waiting} still unknown")
        if waiting:
            raise SystemExit(1)
