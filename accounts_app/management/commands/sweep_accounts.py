"""Read every instance's accounts and record the drift (what the scheduler runs hourly)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from accounts_app.services.drift import sweep_accounts


class Command(BaseCommand):
    help = "Sweep every instance's accounts with DescribeAccounts and record the drift."

    def add_arguments(self, parser):
        parser.add_argument(
            "--pause", type=float, default=0.1, help="Seconds between two instances' calls."
        )

    def handle(self, *args, **options):
        report = sweep_accounts(pause=options["pause"])
        self.stdout.write(
            f"{report.instances} instances swept, {report.failures} failed, "
            f"{report.new_drift} new drift"
        )
        if report.failures:
            raise SystemExit(1)
