"""Where a request's approvals stand: who approved, and who may still decide."""

from __future__ import annotations

from dataclasses import dataclass

from accounts_app import policy
from accounts_app.models import AccountRequest, Decision


@dataclass(frozen=True)
class ApprovalProgress:
    given: int
    required: int
    approved_by: list[str]
    rejected_by: list[tuple[str, str]]  # (approver, their reason)
    waiting_for: list[str]  # empty unless pending


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
        deciders = policy.approvers_who_may_decide(account_request)
        waiting_for = [user.get_username() for user in deciders]
    return ApprovalProgress(
        given=len(approved_by),
        required=account_request.approvals_required,
        approved_by=approved_by,
        rejected_by=rejected_by,
        waiting_for=waiting_for,
    )
