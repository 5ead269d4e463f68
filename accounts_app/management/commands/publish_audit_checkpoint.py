"""Publish the audit chain's head to the auditors' mail and the log stream."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from accounts_app.services.audit_checkpoints import checkpoint_publish


class Command(BaseCommand):
    help = (
        "Publish the audit chain head (sequence and hash) to the auditors by mail and to "
        "the log stream, where the database's owner cannot rewrite it. Run on a schedule; "
        "verify_audit_chain --checkpoint checks the log against the last one."
    )

    def handle(self, *args, **options):
        checkpoint = checkpoint_publish()
        self.stdout.write(checkpoint.line())
