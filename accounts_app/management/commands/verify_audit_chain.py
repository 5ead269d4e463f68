"""Check the audit log's HMAC chain: exit status 0 when intact, 1 when broken."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts_app.audit import ChainBreak, VerifyReport, verify_chain
from accounts_app.models import AuditEvent
from accounts_app.services.audit_checkpoints import checkpoint_holds, last_checkpoint


class Command(BaseCommand):
    help = (
        "Walk the audit log in order, recompute every event's HMAC and link, and report "
        "the first broken, missing or inserted event. Exit status 1 when the chain is broken."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=20_000)
        parser.add_argument(
            "--workers",
            type=int,
            default=min(4, os.cpu_count() or 1),
            help="Processes that check parts of the chain side by side (default: CPUs, up to 4).",
        )
        parser.add_argument(
            "--checkpoint",
            metavar="FILE_OR_LINE",
            help=(
                "A published checkpoint: a file holding checkpoint lines (a log, a saved "
                "mail; the last one counts), or the line itself. Fail unless that event "
                "is still there, unchanged."
            ),
        )
        parser.add_argument(
            "--anchor",
            metavar="SEQ:HASH",
            help="A chain head printed by an earlier run: fail unless that event is still there.",
        )

    def handle(
        self,
        *args,
        batch_size: int,
        workers: int,
        anchor: str | None,
        checkpoint: str | None = None,
        **options,
    ):
        report = verify_chain(batch_size=batch_size, workers=workers)
        if anchor:
            check_anchor(report, anchor)
        if checkpoint:
            check_checkpoint(report, checkpoint)
        summary = (
            f"Checked {report.checked} events (chain head at seq {report.head_seq}) "
            f"in {report.seconds:.2f} s."
        )
        # Kept somewhere the database's owner cannot write, the head shows a
        # later deletion of the newest events, which the chain alone cannot.
        head = f"Chain head: {report.head_seq}:{report.head_hash}"
        if report.ok:
            self.stdout.write(self.style.SUCCESS(f"{summary} The chain is intact."))
            self.stdout.write(head)
            return
        self.stdout.write(summary)
        self.stdout.write(head)
        first = report.first_break
        self.stderr.write(self.style.ERROR(f"The chain is broken. First break: {first}"))
        for chain_break in report.breaks[1:]:
            self.stderr.write(f"  then {chain_break}")
        # SystemExit rather than CommandError: the report above is the message,
        # and call_command() callers (tests) can still catch it.
        raise SystemExit(1)


def check_anchor(report: VerifyReport, anchor: str) -> None:
    """Deleting the newest events and rewinding the head leaves an intact chain;
    an anchor kept from before shows the loss."""
    seq_text, _, expected_hash = anchor.partition(":")
    if not seq_text.isdigit() or len(expected_hash) != 64:
        raise CommandError("--anchor takes SEQ:HASH, as printed after 'Chain head:'.")
    seq = int(seq_text)
    if not AuditEvent.objects.filter(seq=seq, hash=expected_hash).exists():
        report.breaks.insert(
            0, ChainBreak(seq, "the anchored event is gone or changed (newest events deleted?)")
        )


def check_checkpoint(report: VerifyReport, source: str) -> None:
    """Like an anchor, read from what publish_audit_checkpoint published."""
    checkpoint = last_checkpoint(source)
    if checkpoint is None:  # not the line itself: a file that holds lines
        checkpoint = last_checkpoint(Path(source).read_text(errors="replace"))
    if checkpoint is None:
        raise CommandError("--checkpoint found no 'audit-checkpoint seq=N hash=H' line.")
    if not checkpoint_holds(checkpoint):
        report.breaks.insert(
            0,
            ChainBreak(
                checkpoint.seq,
                "the published checkpoint's event is gone or changed (newest events deleted?)",
            ),
        )
