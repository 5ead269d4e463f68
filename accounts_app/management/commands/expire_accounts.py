"""Delete the time-boxed accounts whose expiry came, and send the reminders due (what the
scheduler runs every SCHEDULE_ACCOUNT_EXPIRY_SECONDS)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from accounts_app.services.expiry import expire_accounts


class Command(BaseCommand):
    help = "Delete the accounts whose expiry came (retrying overdue ones) and send reminders."

    def handle(self, *args, **options):
        report = expire_accounts()
        self.stdout.write(
            f"{report.deleted} accounts deleted at their expiry, {report.overdue} overdue, "
            f"{report.reminders} reminders queued"
        )
