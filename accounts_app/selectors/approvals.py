"""Where a request's approvals stand: who approved, and who may still decide."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet

from accounts_app import policy
from accounts_app.models import AccountRequest, Decision
from accounts_app.selectors.prepared import Prepared


@dataclass(frozen=True)
class ApprovalProgress:
    given: int
    required: int
    approved_by: list[str]
    rejected_by: list[tuple[str, str]]  # (approver, their reason)
    waiting_for: list[str]  # empty unless pending


def _deciders(_viewer, _wait_on: bool, *, request_id, requester_id, wait_start) -> QuerySet:
    # A pending request stands in for the one asked about: only its key and requester's
    # go into the SQL.
    pending = AccountRequest(
        pk=request_id, requester_id=requester_id, status=AccountRequest.Status.PENDING
    )
    return policy.approvers_who_may_decide(pending, wait_start=wait_start)


# Who may still decide: compiled once per process (selectors/prepared.py).
_DECIDERS = Prepared(_deciders, request_id=int, requester_id=int, wait_start=datetime)


def approval_progress(account_request: AccountRequest) -> ApprovalProgress:
    """Reads the prefetched decisions; asks who may still decide only while pending."""
    decisions = list(account_request.decisions.all())
    approved_by = [
        d.approver.get_username() for d in decisions if d.verdict == Decision.Verdict.APPROVE
    ]
    rejected_by = [
        (d.approver.get_username(), d.comment)
        for d in decisions
        if d.verdict == Decision.Verdict.REJECT
    ]
    waiting_for = []
    if account_request.is_pending:
        deciders = _DECIDERS.rows(
            None,
            shape=(settings.APPROVER_WAIT_HOURS > 0,),
            request_id=account_request.pk,
            requester_id=account_request.requester_id,
            wait_start=policy.approver_wait_start(),
        )
        waiting_for = [user.get_username() for user in deciders]
    return ApprovalProgress(
        given=len(approved_by),
        required=account_request.approvals_required,
        approved_by=approved_by,
        rejected_by=rejected_by,
        waiting_for=waiting_for,
    )
