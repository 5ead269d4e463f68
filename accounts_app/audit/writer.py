"""The one way into the audit log: record_event()."""

from __future__ import annotations

import threading

from django.db import transaction
from django.utils import timezone

from accounts_app.audit.chain import event_digest, event_values
from accounts_app.audit.messages import AuditMessage
from accounts_app.audit.origin import Origin, normalized_ip
from accounts_app.models import AccountRequest, AuditChainHead, AuditEvent


def record_event(
    *,
    action: str,
    outcome: str,
    origin: Origin,
    request: AccountRequest | None = None,
    instance_id: str = "",
    region_id: str = "",
    account_name: str = "",
    account_privilege: str = "",
    alibaba_request_id: str = "",
    error_code: str = "",
    comment: str = "",
    message: AuditMessage | None = None,
) -> AuditEvent:
    """Append one event. Call it inside the transaction of the change it records.

    If it fails, the exception propagates and the caller's transaction rolls
    back: nothing happens without its audit event (fail closed).

    ``message``: what the system says about the event, from the catalogue
    (accounts_app.audit.messages); ``comment``: what a user typed.
    """
    if request is not None:
        instance_id = instance_id or request.instance.instance_id
        region_id = region_id or request.instance.region_id
        account_name = account_name or request.account_name
        account_privilege = account_privilege or request.account_privilege
    # No savepoint inside the caller's transaction: a failure here rolls all of it back
    # anyway (fail closed), and a savepoint costs two statements per event.
    with transaction.atomic(savepoint=False):
        head = _last_head.value
        event = AuditEvent(
            actor=origin.actor,
            actor_name=_text(origin.actor_name)[:150],
            source_ip=normalized_ip(origin.source_ip),
            user_agent=_text(origin.user_agent)[:512],
            action=action,
            request=request,
            instance_id=_text(instance_id),
            region_id=_text(region_id),
            account_name=_text(account_name),
            account_privilege=_text(account_privilege),
            outcome=outcome,
            alibaba_request_id=_text(alibaba_request_id),
            error_code=_text(error_code)[:128],
            comment=_text(comment),
            message_id=message.id if message else "",
            message_params=_text(message.params_text()) if message else "",
        )
        if head is None or not _advance(head, _chained(event, head), if_unchanged=True):
            head = _locked_chain_head()
            _advance(head, _chained(event, head))
        event.save(force_insert=True)
        _last_head.value = AuditChainHead(
            pk=1, seq=event.seq, hash=event.hash, last_event_at=event.created_at
        )
    if request is not None:
        # The notifications of this transition name it by this event (one statement
        # fewer than reading the request's newest event back).
        request.last_event_seq = event.seq
    return event


# The chain head as this thread last wrote it: the next event is chained to it and the head
# moved on by one compare-and-set UPDATE (its row lock on PostgreSQL, like the SELECT ...
# FOR UPDATE it spares); when another process (or a rollback) moved the head since, nothing
# matches and the head is read under its lock as before. Never trusted, only compared.
class _LastHead(threading.local):
    value: AuditChainHead | None = None


_last_head = _LastHead()


def _chained(event: AuditEvent, head: AuditChainHead) -> AuditEvent:
    """The event as the next link after ``head``: its seq, time and hashes."""
    event.seq = head.seq + 1
    event.created_at = _next_time(head)
    event.prev_hash = head.hash
    event.hash = event_digest(event_values(event), head.hash)
    return event


def _advance(head: AuditChainHead, event: AuditEvent, *, if_unchanged: bool = False) -> bool:
    """Move the head on to ``event``; ``if_unchanged``: only if it is still ``head``."""
    heads = AuditChainHead.objects.filter(pk=head.pk)
    if if_unchanged:
        heads = heads.filter(seq=head.seq, hash=head.hash, last_event_at=head.last_event_at)
    return heads.update(seq=event.seq, hash=event.hash, last_event_at=event.created_at) == 1


def _next_time(head: AuditChainHead):
    """Now, or the previous event's time if the clock has stepped back since.

    Time never goes backwards along the chain, so the audit page can turn a
    date range into a seq range (audit_selectors._within_times).
    """
    now = timezone.now()
    previous = head.last_event_at
    if previous is None:  # a head from before last_event_at: read the event itself
        events = AuditEvent.objects.filter(seq=head.seq)
        previous = events.values_list("created_at", flat=True).first()
    return max(now, previous) if previous is not None else now


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL; a stray one (say, in a typed username)
    # must not make the event, and so the change it records, impossible.
    return str(value).replace("\x00", "")


def _locked_chain_head() -> AuditChainHead:
    # Migration 0002 creates the row; get_or_create only matters for a database
    # whose tables were emptied (tests), where it may race once, harmlessly.
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        AuditChainHead.objects.get_or_create(pk=1)
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head
