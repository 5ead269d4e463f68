"""The request list (/requests/): its tabs, filters and pages.

Pages are read one row past their end instead of counted: a count over every visible
request would cost a query per page, and "older" needs only to know that one more
row exists.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.db import connections
from django.db.models import Count, Func, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.db.models.lookups import In
from django.utils import timezone

from accounts_app import policy
from accounts_app.models import AccountRequest, Decision
from accounts_app.selectors.prepared import PREPARED_PAGES, Prepared
from accounts_app.selectors.requests import (
    _wait_shape,
    prepared_viewer,
    requests_with_instance,
    visible_to,
    waiting_for_approval,
)

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
    rows: list[dict]
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
    # The ALL tab: the requests the user may see (None: a prepared_viewer() who sees all).
    return visible_to(user, requests_with_instance())


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
    return _filtered_by(requests, _filter_values(given, connections[requests.db].vendor))


def _filter_values(given: RequestFilter, vendor: str) -> dict[str, str | datetime.datetime]:
    """The filters that are set, as the values the query compares: the dates as the
    times their days begin and end; the search as an FTS5 phrase where one serves it."""
    values = {
        "status": given.status,
        "privilege": given.privilege,
        "instance": given.instance,
        "requester": given.requester,
    }
    values = {name: value for name, value in values.items() if value}
    if given.date_from:
        values["created_from"] = _start_of(given.date_from)
    if given.date_to:
        values["created_before"] = _start_of(given.date_to + _ONE_DAY)
    if given.search:
        if vendor == "sqlite" and len(given.search) >= TRIGRAM:
            # The term as one FTS5 string, no syntax.
            values["phrase"] = '"' + given.search.replace('"', '""') + '"'
        else:
            values["term"] = given.search
    return values


def _filtered_by(requests: QuerySet, values: dict) -> QuerySet[AccountRequest]:
    if "status" in values:
        requests = requests.filter(status=values["status"])
    if "privilege" in values:
        requests = requests.filter(account_privilege=values["privilege"])
    if "instance" in values:
        requests = requests.filter(
            Q(instance__instance_id__icontains=values["instance"])
            | Q(instance__name__icontains=values["instance"])
        )
    if "requester" in values:
        requests = requests.filter(requester__username__icontains=values["requester"])
    if "created_from" in values:
        requests = requests.filter(created_at__gte=values["created_from"])
    if "created_before" in values:
        requests = requests.filter(created_at__lt=values["created_before"])
    if "phrase" in values:
        requests = requests.filter(_matching_phrase(values["phrase"]))
    if "term" in values:
        # PostgreSQL: the planner walks request_list_order for a frequent term
        # (migration request_search_index says what was measured).
        term = values["term"]
        requests = requests.filter(reduce(or_, (Q(**{f"{c}__icontains": term}) for c in SEARCHED)))
    return requests


# The free-text search: a case-insensitive substring of any of these columns.
SEARCHED = (
    "account_name",
    "account_description",
    "justification",
    "instance__instance_id",
    "instance__name",
)
# FTS5's trigram tokenizer finds substrings of three characters or more; a shorter term
# is looked for with LIKE.
TRIGRAM = 3
# The FTS5 tables that index SEARCHED on SQLite (migration request_search_index).
_MATCHING_REQUESTS = (
    "SELECT rowid FROM accounts_app_request_search WHERE accounts_app_request_search MATCH %s"
)
_MATCHING_INSTANCES = (
    "SELECT rowid FROM accounts_app_instance_search WHERE accounts_app_instance_search MATCH %s"
)


class Unindexed(Func):
    """`+column`: the same value, which SQLite's planner may not look up in an index."""

    template = "+%(expressions)s"


def _matching_phrase(phrase: str) -> Q:
    """SQLite: the requests where the FTS5 phrase is found (SEARCHED)."""
    # Unindexed: SQLite walks the list's order (the request_list_order index) and stops
    # at a page's rows, checking each against the matches; looking each match up instead
    # and sorting them all cost 12 to 40 ms for a term in thousands of requests.
    # The SQL is constant; the phrase is a parameter.
    matching_requests = RawSQL(_MATCHING_REQUESTS, [phrase])  # noqa: S611
    matching_instances = RawSQL(_MATCHING_INSTANCES, [phrase])  # noqa: S611
    return Q(In(Unindexed("pk"), matching_requests)) | Q(
        In(Unindexed("instance_id"), matching_instances)
    )


_ONE_DAY = datetime.timedelta(days=1)


def _start_of(day: datetime.date) -> datetime.datetime:
    """Midnight of `day` in the viewer's time zone (the dates they typed)."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))


# What a row shows (templatetags/request_list.py), read as values: model instances of
# the request, its instance and its requester cost most of the page (14 datetime
# conversions a row, three objects and their signals).
ROW_VALUES = (
    "pk",
    "account_name",
    "account_privilege",
    "status",
    "approvals_required",
    "approvals_given",
    "created_at",
    "instance__instance_id",
    "instance__name",
    "requester__username",
)


def page_of(requests: QuerySet[AccountRequest], number: int) -> RequestPage:
    """One page of rows (dicts of ROW_VALUES), newest first, and whether an older one
    exists: one query."""
    return _page(list(_page_rows(requests, number)), number)


def _page_rows(requests: QuerySet[AccountRequest], number: int) -> QuerySet:
    start = (number - 1) * PAGE_SIZE
    return (
        with_approval_counts(requests)
        .order_by("-created_at", "-pk")
        .values(*ROW_VALUES)[start : start + PAGE_SIZE + 1]
    )


def _page(rows: list[dict], number: int) -> RequestPage:
    return RequestPage(rows=rows[:PAGE_SIZE], number=number, has_next=len(rows) > PAGE_SIZE)


def _approval_rows(viewer, number: int, _wait_on: bool, *, wait_start) -> QuerySet:
    return _page_rows(waiting_for_approval(viewer, wait_start=wait_start), number)


# The approvals page: compiled once per process (selectors/prepared.py), building it
# cost more than half of the page. A page's LIMIT and OFFSET are written into the SQL:
# the first pages are kept compiled, later ones built each time.
_APPROVAL_ROWS = Prepared(_approval_rows, wait_start=datetime.datetime)


def _my_rows(viewer, number: int) -> QuerySet:
    return _page_rows(tab_requests(viewer, MINE), number)


_MY_ROWS = Prepared(_my_rows)


def tab_page(user, tab: str, given: RequestFilter, number: int) -> RequestPage:
    """A page of a tab, filtered. A tab as it opens (no filter, one of its first pages)
    is read through a query compiled once, as the approvals page is; so is one filtered
    by values the query compares as given (not a part of a name: LIKE wraps it)."""
    if given == RequestFilter() and number <= PREPARED_PAGES:
        if tab == MINE:
            return _page(_MY_ROWS.values(user, shape=(number,)), number)
        if tab == WAITING:
            return approvals_page(user, number)
    values = _filter_values(given, connections["default"].vendor)
    if tab != WAITING and number <= PREPARED_PAGES and set(values) <= _COMPARED_AS_GIVEN:
        viewer = prepared_viewer(user) if tab == ALL else user
        return _page(_FILTERED_ROWS.values(viewer, shape=(tab, number), **values), number)
    return page_of(_filtered_by(tab_requests(user, tab), values), number)


def _filtered_rows(viewer, tab: str, number: int, **values) -> QuerySet:
    return _page_rows(_filtered_by(tab_requests(viewer, tab), values), number)


_COMPARED_AS_GIVEN = {"status", "privilege", "created_from", "created_before", "phrase"}
_FILTERED_ROWS = Prepared(
    _filtered_rows,
    status=str,
    privilege=str,
    created_from=datetime.datetime,
    created_before=datetime.datetime,
    phrase=str,
)


def approvals_page(user, number: int) -> RequestPage:
    """A page of the requests waiting for this approver (policy.may_decide)."""
    if number > PREPARED_PAGES:
        return page_of(waiting_for_approval(user), number)
    rows = _APPROVAL_ROWS.values(
        user, shape=_wait_shape(number), wait_start=policy.approver_wait_start()
    )
    return _page(rows, number)


def page_number(raw: str | None) -> int:
    """?page=, 1 for anything that is not a small positive number."""
    if raw and raw.isascii() and raw.isdigit() and len(raw) <= 6:
        return max(int(raw), 1)
    return 1
