"""Audit checkpoints (issue 23, "Also"): the chain head published to the auditors' mail
and the log stream; verify_audit_chain checks the log against the last one published,
which catches a truncation with a rewound head that the chain alone cannot."""

from __future__ import annotations

import io
import logging

import pytest
from django.core.management import call_command

from accounts_app.models import AuditChainHead, AuditEvent
from tests.test_audit_chain import TABLE, seed, tamper

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor_with_mail(auditor):
    auditor.email = "carol@example.com"
    auditor.save()
    return auditor


def publish() -> str:
    out = io.StringIO()
    call_command("publish_audit_checkpoint", stdout=out)
    return out.getvalue().strip()


def test_a_checkpoint_goes_to_the_auditors_mail_and_the_log_stream(
    auditor_with_mail, mailoutbox, caplog
):
    seed(10)
    head = AuditChainHead.objects.get()
    caplog.set_level(logging.INFO, logger="accounts_app.audit.checkpoint")

    line = publish()

    assert f"audit-checkpoint seq={head.seq} hash={head.hash}" in line
    assert line in caplog.text
    (mail,) = mailoutbox
    assert mail.to == ["carol@example.com"]
    assert f"seq={head.seq} hash={head.hash}" in mail.body
    published = AuditEvent.objects.get(action=AuditEvent.Action.CHECKPOINT_PUBLISHED)
    assert published.seq == head.seq + 1


def truncate_after(seq: int) -> None:
    """What the database's owner can do: delete the newest events and rewind the head."""
    tamper(f"DELETE FROM {TABLE} WHERE seq > %s", [seq])  # noqa: S608
    previous = AuditEvent.objects.get(seq=seq)
    AuditChainHead.objects.filter(pk=1).update(seq=previous.seq, hash=previous.hash)


def test_the_last_published_checkpoint_catches_a_rewound_truncation(
    auditor_with_mail, mailoutbox, tmp_path, capsys
):
    seed(20)
    log = tmp_path / "audit.log"
    log.write_text("older line audit-checkpoint seq=1 hash=" + "0" * 64 + "\n")
    published = publish()
    log.write_text(log.read_text() + published + "\n")
    checkpoint_seq = int(published.split("seq=")[1].split()[0])
    call_command("verify_audit_chain", checkpoint=str(log))  # intact: passes

    truncate_after(checkpoint_seq - 3)
    call_command("verify_audit_chain")  # the chain alone sees nothing wrong
    capsys.readouterr()

    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit_chain", checkpoint=str(log))
    assert exit_info.value.code == 1
    assert "published checkpoint's event is gone" in capsys.readouterr().err
    # The mail is a second copy of the same checkpoint.
    with pytest.raises(SystemExit):
        call_command("verify_audit_chain", checkpoint=mailoutbox[-1].body)
