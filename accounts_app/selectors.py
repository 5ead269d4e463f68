"""Read-only queries the views share."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts_app.models import AccountRequest

Status = AccountRequest.Status


def requests_with_instance() -> QuerySet[AccountRequest]:
    return AccountRequest.objects.select_related("instance", "requester")


def my_requests(user) -> QuerySet[AccountRequest]:
    return requests_with_instance().filter(requester=user)


def waiting_for_approval(user) -> QuerySet[AccountRequest]:
    """Pending requests this approver may still decide: not theirs, not yet decided by them."""
    return (
        requests_with_instance()
        .filter(status=Status.PENDING)
        .exclude(requester=user)
        .exclude(decisions__approver=user)
    )


def needing_reconciliation(*, requester=None) -> QuerySet[AccountRequest]:
    """Requests of unknown outcome: everyone's, or one requester's."""
    requests = requests_with_instance().filter(status=Status.NEEDS_RECONCILIATION)
    return requests.filter(requester=requester) if requester is not None else requests


def recently_created(*, requester=None) -> QuerySet[AccountRequest]:
    requests = requests_with_instance().filter(status=Status.CREATED).order_by("-finished_at")
    return requests.filter(requester=requester) if requester is not None else requests
