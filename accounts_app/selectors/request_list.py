"""The request list (/requests/): its tabs, filters and pages.

Pages are read one row past their end instead of counted: a count over every visible
request would cost a query per page, and "older" needs only to know that one more
row exists.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts_app import policy
from accounts_app.models import AccountRequest, Decision
from accounts_app.selectors.requests import requests_with_instance, waiting_for_approval

PAGE_SIZE = 50

MINE, WAITING, ALL = "mine", "waiting", "all"
TABS = (MINE, WAITING, ALL)


@dataclass(frozen=True)
class RequestFilter:
    status: str = ""
    instance: str = ""
    requester: str = ""
    privilege: str = ""
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    search: str = ""


@dataclass(frozen=True)
class RequestPage:
    rows: list[AccountRequest]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def available_tabs(user) -> list[str]:
    """Mine for requesters, waiting for approvers, all for who may see more than theirs."""
    tabs = []
    if policy.may_request(user):
        tabs.append(MINE)
    if policy.may_approve(user):
        tabs.append(WAITING)
    if policy.may_view_everything(user) or not tabs:
        tabs.append(ALL)
    return tabs


def tab_requests(user, tab: str) -> QuerySet[AccountRequest]:
    if tab == MINE:
        return requests_with_instance().filter(requester=user)
    if tab == WAITING:
        return waiting_for_approval(user)
    return policy.visible_requests(user, requests_with_instance())


def with_approval_counts(requests: QuerySet[AccountRequest]) -> QuerySet[AccountRequest]:
    """Each row's approvals so far as `approvals_given`, in the same query (a subquery:
    a join would group every selected column)."""
    approvals = (
        Decision.objects.filter(request=OuterRef("pk"), verdict=Decision.Verdict.APPROVE)
        .values("request")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return requests.annotate(approvals_given=Coalesce(Subquery(approvals), 0))


def filtered_requests(requests: QuerySet, given: RequestFilter) -> QuerySet[AccountRequest]:
    if given.status:
        requests = requests.filter(status=given.status)
    if given.privilege:
        requests = requests.filter(account_privilege=given.privilege)
    if given.instance:
        requests = requests.filter(
            Q(instance__instance_id__icontains=given.instance)
            | Q(instance__name__icontains=given.instance)
        )
    if given.requester:
        requests = requests.filter(requester__username__icontains=given.requester)
    if given.date_from:
        requests = requests.filter(created_at__gte=_start_of(given.date_from))
    if given.date_to:
        requests = requests.filter(created_at__lt=_start_of(given.date_to + _ONE_DAY))
    if given.search:
        term = given.search
        requests = requests.filter(
            Q(account_name__icontains=term)
            | Q(account_description__icontains=term)
            | Q(justification__icontains=term)
            | Q(instance__instance_id__icontains=term)
            | Q(instance__name__icontains=term)
        )
    return requests


_ONE_DAY = datetime.timedelta(days=1)


def _start_of(day: datetime.date) -> datetime.datetime:
    """Midnight of `day` in the viewer's time zone (the dates they typed)."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))


def page_of(requests: QuerySet[AccountRequest], number: int) -> RequestPage:
    """One page, newest first, and whether an older one exists: one query."""
    start = (number - 1) * PAGE_SIZE
    rows = list(
        with_approval_counts(requests).order_by("-created_at", "-pk")[start : start + PAGE_SIZE + 1]
    )
    return RequestPage(rows=rows[:PAGE_SIZE], number=number, has_next=len(rows) > PAGE_SIZE)


def page_number(raw: str | None) -> int:
    """?page=, 1 for anything that is not a small positive number."""
    if raw and raw.isascii() and raw.isdigit() and len(raw) <= 6:
        return max(int(raw), 1)
    return 1
