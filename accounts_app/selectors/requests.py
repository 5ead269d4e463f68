"""Read-only queries the views share."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from accounts_app import policy
from accounts_app.models import AccountRequest, Decision

Status = AccountRequest.Status


def requests_with_instance() -> QuerySet[AccountRequest]:
    return AccountRequest.objects.select_related("instance", "requester")


def my_requests(user) -> QuerySet[AccountRequest]:
    return requests_with_instance().filter(requester=user)


def waiting_for_approval(user) -> QuerySet[AccountRequest]:
    """Pending requests this approver may still decide (policy.may_decide)."""
    return policy.decidable_requests(user, requests_with_instance())


def needing_reconciliation(user) -> QuerySet[AccountRequest]:
    """Requests of unknown outcome that this user may see."""
    return policy.visible_requests(
        user, requests_with_instance().filter(status=Status.NEEDS_RECONCILIATION)
    )


def recently_created(user) -> QuerySet[AccountRequest]:
    requests = requests_with_instance().filter(status=Status.CREATED).order_by("-finished_at")
    return policy.visible_requests(user, requests)


def visible_request(user, pk: int, *, with_decisions: bool = False) -> AccountRequest | None:
    """The request, with what its page shows, if this user may see it; else None.
    Raises DoesNotExist when there is no such request."""
    requests = requests_with_instance().select_related("executed_by")
    if with_decisions:
        decisions = Decision.objects.select_related("approver")
        requests = requests.prefetch_related(Prefetch("decisions", queryset=decisions))
    account_request = requests.get(pk=pk)
    return account_request if policy.may_see_request(user, account_request) else None


def copy_source(user, source_id: str | None) -> AccountRequest | None:
    """The user's own earlier request named by ?copy=, for "copy into a new request"."""
    # isdigit() alone lets "²" and 5,000-digit numbers through to int(): a 500.
    if not source_id or not (source_id.isascii() and source_id.isdigit()) or len(source_id) > 18:
        return None
    return requests_with_instance().filter(pk=int(source_id), requester=user).first()
