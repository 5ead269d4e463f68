"""Audit checkpoints: the chain head (sequence and hash), published where the database's
owner cannot rewrite it, the auditors' mailboxes and the log stream (a chat channel when
one exists). Deleting the newest events together with a matching rewind of the head
leaves a chain that verifies; `verify_audit_chain --checkpoint` against the last
published checkpoint shows it.

Published by the `publish_audit_checkpoint` command, meant to run on a schedule.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts_app import notifications
from accounts_app.audit import Origin, record_event
from accounts_app.models import AuditChainHead, AuditEvent

# The log stream: route this logger to a collector the database's owner cannot edit.
logger = logging.getLogger("accounts_app.audit.checkpoint")

LINE = re.compile(r"audit-checkpoint seq=(?P<seq>\d+) hash=(?P<hash>[0-9a-f]{64})")


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: datetime | None = None

    def line(self) -> str:
        at = f" at={self.at.isoformat()}" if self.at else ""
        return f"audit-checkpoint seq={self.seq} hash={self.hash}{at}"


def checkpoint_publish(*, origin: Origin | None = None) -> Checkpoint:
    """Publish the head as it is now to every sink, then record that it was published
    (that event is the next checkpoint's business)."""
    head = AuditChainHead.objects.get_or_create(pk=1)[0]
    checkpoint = Checkpoint(seq=head.seq, hash=head.hash, at=timezone.now())
    logger.info(checkpoint.line())
    notifications.audit_checkpoint(seq=checkpoint.seq, digest=checkpoint.hash, at=checkpoint.at)
    with transaction.atomic():
        record_event(
            action=AuditEvent.Action.CHECKPOINT_PUBLISHED,
            outcome=AuditEvent.Outcome.SUCCESS,
            origin=origin or Origin.system("publish_audit_checkpoint"),
            comment=checkpoint.line(),
        )
    return checkpoint


def last_checkpoint(text: str) -> Checkpoint | None:
    """The last checkpoint line in a text: a log file, a saved mail, or the line itself."""
    found = list(LINE.finditer(text))
    if not found:
        return None
    match = found[-1]
    return Checkpoint(seq=int(match["seq"]), hash=match["hash"])


def checkpoint_holds(checkpoint: Checkpoint) -> bool:
    """The checkpointed event is still in the log, unchanged."""
    return AuditEvent.objects.filter(seq=checkpoint.seq, hash=checkpoint.hash).exists()
