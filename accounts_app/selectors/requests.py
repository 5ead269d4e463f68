"""Read-only queries the views share."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import reduce
from operator import or_

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import (
    BooleanField,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import JSONObject

from accounts_app import policy
from accounts_app.models import AccountRequest, AuditEvent, Decision, RequestKind
from accounts_app.selectors import expiry
from accounts_app.selectors.json_rows import JsonRows, row_time
from accounts_app.selectors.prepared import Prepared

Status = AccountRequest.Status


def open_rivals(*, instance, account_name, exclude_request_id=None) -> QuerySet[AccountRequest]:
    """The other open requests for this account name on this instance (on it, or among
    the instances of a fleet request), oldest first. Arguments may be OuterRefs."""
    others = AccountRequest.objects.filter(
        Q(instance=instance) | Q(targets__instance=instance),
        account_name=account_name,
        status__in=AccountRequest.OPEN_STATUSES,
    )
    if exclude_request_id is not None:
        others = others.exclude(pk=exclude_request_id)
    return others.order_by("pk")


def requests_with_instance() -> QuerySet[AccountRequest]:
    return AccountRequest.objects.select_related("instance", "requester")


def prepared_viewer(user):
    """Whom a Prepared query (selectors/prepared.py) of the requests `user` may see runs
    for: None for one who may see every request, whose query is then the same whoever
    asks (and a Prepared query for a viewer must ask the viewer's key)."""
    return None if policy.may_view_everything(user) else user


def visible_to(viewer, requests: QuerySet[AccountRequest]) -> QuerySet[AccountRequest]:
    """policy.visible_requests() for a prepared_viewer(): None sees every request."""
    return requests if viewer is None else policy.visible_requests(viewer, requests)


def my_requests(user) -> QuerySet[AccountRequest]:
    return requests_with_instance().filter(requester=user)


def waiting_for_approval(user, *, wait_start=None) -> QuerySet[AccountRequest]:
    """Pending requests this approver may still decide (policy.may_decide)."""
    return policy.decidable_requests(user, requests_with_instance(), wait_start=wait_start)


def _capped_waiting(user, cap: int, _wait_on: bool, *, wait_start) -> QuerySet[AccountRequest]:
    return waiting_for_approval(user, wait_start=wait_start)[:cap]


_WAITING_COUNT = Prepared(_capped_waiting, wait_start=datetime)


def waiting_count(user, cap: int) -> int:
    """How many requests wait for this approver's decision, counting at most ``cap``
    (the navigation's badge, on every page: compiled once, selectors/prepared.py)."""
    if not policy.may_approve(user):
        return 0
    return _WAITING_COUNT.count(
        user, shape=_wait_shape(cap), wait_start=policy.approver_wait_start()
    )


def _wait_shape(*shape) -> tuple:
    # Whether the approver wait is on changes the SQL (policy.decidable_requests).
    return (*shape, settings.APPROVER_WAIT_HOURS > 0)


def needing_reconciliation(user) -> QuerySet[AccountRequest]:
    """Requests of unknown outcome that this user may see."""
    return policy.visible_requests(
        user, requests_with_instance().filter(status=Status.NEEDS_RECONCILIATION)
    )


def recently_created(user) -> QuerySet[AccountRequest]:
    # Accounts created: a change to an account also ends "created" (done), but made none.
    created = requests_with_instance().filter(status=Status.CREATED, kind=RequestKind.CREATE)
    requests = created.order_by("-finished_at")
    return policy.visible_requests(user, requests)


# The dashboard's lists: (selector, the field its newest-first order is by).
DASHBOARD_LISTS = {
    "my_requests": (my_requests, "created_at"),
    "waiting": (waiting_for_approval, "created_at"),
    "reconciliation": (needing_reconciliation, "created_at"),
    "recently_created": (recently_created, "finished_at"),
}


def _dashboard_rows(user, size: int, _wait_on: bool, *, wait_start) -> QuerySet[AccountRequest]:
    """Every row of the query says which lists' first rows it is among (one sliced
    subquery per list); a row may be in several (your own request, just created).
    "waiting" is left out for a user who may not approve."""
    selected = {
        name: selector(user, wait_start=wait_start) if name == "waiting" else selector(user)
        for name, (selector, _order) in DASHBOARD_LISTS.items()
        if name != "waiting" or policy.may_approve(user)
    }
    firsts = {name: requests.values("pk")[:size] for name, requests in selected.items()}
    flags = {
        f"in_{name}": ExpressionWrapper(Q(pk__in=first), output_field=BooleanField())
        for name, first in firsts.items()
    }
    if connection.vendor == "postgresql":
        # PostgreSQL plans "in one of the lists" as a filter on every request (35 ms at
        # 50,000 requests). Each list as an array is a few keys it reads by.
        anywhere = reduce(
            or_, (Q(IsAnyOf(F("pk"), ArraySubquery(first))) for first in firsts.values())
        )
    else:
        anywhere = reduce(or_, (Q(**{flag: True}) for flag in flags))
    return requests_with_instance().annotate(**flags).filter(anywhere)


class IsAnyOf(Func):
    """`value = ANY(array)`, on PostgreSQL."""

    arg_joiner = " = ANY("
    template = "(%(expressions)s))"
    output_field = BooleanField()


_DASHBOARD_ROWS = Prepared(_dashboard_rows, wait_start=datetime)


def dashboard_lists(user, size: int) -> dict[str, list[AccountRequest]]:
    """Each dashboard list's `size` newest rows, in one query rather than one per list
    (compiled once per process and set of roles: selectors/prepared.py)."""
    rows = _DASHBOARD_ROWS.rows(
        user, shape=_wait_shape(size), wait_start=policy.approver_wait_start()
    )
    selected = [name for name in DASHBOARD_LISTS if name != "waiting" or policy.may_approve(user)]
    lists = {name: [] for name in DASHBOARD_LISTS}
    for name in selected:
        order = DASHBOARD_LISTS[name][1]
        members = [row for row in rows if getattr(row, f"in_{name}")]
        lists[name] = sorted(members, key=_newest_first(order), reverse=True)
    return lists


def _newest_first(field: str):
    # A row written without its time (a repair by hand) sorts last, not a TypeError.
    def key(row: AccountRequest):
        return (getattr(row, field) or _NEVER, row.pk)

    return key


_NEVER = datetime.min.replace(tzinfo=UTC)


def visible_request(user, pk: int, *, with_decisions: bool = False) -> AccountRequest | None:
    """The request, with what its page shows, if this user may see it; else None.
    Raises DoesNotExist when there is no such request. ``with_decisions``: its decisions
    (``decisions.all()``), its audit events (``timeline``) and the deletions its expiry
    tried (``deletion_rows``, expiry.deletions_from), in the same query."""
    if not with_decisions:
        account_request = _request_with_people(pk).get()
    else:
        rows = _REQUEST_PAGE.rows(
            user, shape=_wait_shape(), request_id=pk, wait_start=policy.approver_wait_start()
        )
        account_request = _with_its_timeline(rows)
        _keep_decisions(account_request, account_request.decision_rows or [])
        account_request.open_rival = _open_rival(account_request)
        account_request.conflict_columns_for = user.pk
    return account_request if policy.may_see_request(user, account_request) else None


def _request_with_people(pk: int) -> QuerySet[AccountRequest]:
    return requests_with_instance().select_related("executed_by").filter(pk=pk)


def _request_page(viewer, _wait_on: bool, *, request_id, wait_start) -> QuerySet:
    """The request with what its page shows, in one query: a row per audit event."""
    requests = _request_with_people(request_id)
    # Whether a grant keeps this user from deciding, in the same query: the page asks.
    requests = requests.annotate(**policy.approver_conflict_columns(viewer, since=wait_start))
    # The deletions its expiry tried: the page shows them while the account is overdue.
    requests = requests.annotate(decision_rows=_DECISION_ROWS, deletion_rows=expiry.DELETIONS)
    # Another open request for the same account: its pre-flight says so.
    requests = requests.annotate(**_OPEN_RIVAL_COLUMNS)
    return _event_columns(requests)


_OPEN_RIVALS = open_rivals(
    instance=OuterRef("instance"),
    account_name=OuterRef("account_name"),
    exclude_request_id=OuterRef("pk"),
)
_OPEN_RIVAL_COLUMNS = {
    "rival_pk": Subquery(_OPEN_RIVALS.values("pk")[:1]),
    "rival_requester_id": Subquery(_OPEN_RIVALS.values("requester_id")[:1]),
}


# Compiled once per process and set of roles: building it cost more CPU than the rest
# of the page (docs/benchmarks.md, sixth round).
_REQUEST_PAGE = Prepared(_request_page, request_id=int, wait_start=datetime)


def _open_rival(account_request: AccountRequest) -> AccountRequest | None:
    """The oldest other open request for the same account, as much of it as the
    pre-flight's check asks (who may see it); None when there is none."""
    if account_request.rival_pk is None:
        return None
    return AccountRequest(
        pk=account_request.rival_pk, requester_id=account_request.rival_requester_id
    )


# The request's decisions and who made them, as one JSON column of the request's query.
_DECISION_FIELDS = ("id", "approver_id", "requester_id", "verdict", "comment", "created_at")
_USERNAME = get_user_model().USERNAME_FIELD
_DECISION_ROWS = Subquery(
    Decision.objects.filter(request=OuterRef("pk"))
    .order_by()
    .values("request")
    .annotate(
        rows=JsonRows(
            JSONObject(**{n: n for n in _DECISION_FIELDS}, approver_name=f"approver__{_USERNAME}")
        )
    )
    .values("rows")
)


def _keep_decisions(account_request: AccountRequest, rows: list[dict]) -> None:
    """The decisions, in the order they were made, kept where prefetch_related keeps
    what it read (django.db.models.query.prefetch_one_level): ``decisions.all()`` asks
    nothing more."""
    decisions = []
    for row in rows:
        decision = Decision(
            **{n: row[n] for n in _DECISION_FIELDS if n != "created_at"},
            created_at=row_time(row["created_at"]),
            request=account_request,
        )
        decision.approver = get_user_model()(
            pk=row["approver_id"], **{_USERNAME: row["approver_name"]}
        )
        decision._state.adding, decision._state.db = False, account_request._state.db
        decisions.append(decision)
    decisions.sort(key=lambda decision: (decision.created_at, decision.pk))
    prefetched = account_request.decisions.get_queryset()
    prefetched._result_cache, prefetched._prefetch_done = decisions, True
    account_request._prefetched_objects_cache = {"decisions": prefetched}


# The request's audit events as columns of its query: a row per event, in their order;
# one row, without an event, when there is none.
_EVENT_FIELDS = tuple(field.attname for field in AuditEvent._meta.concrete_fields)


def _event_columns(requests: QuerySet) -> QuerySet:
    columns = {f"event_{name}": F(f"events__{name}") for name in _EVENT_FIELDS}
    return requests.annotate(**columns).order_by("event_seq")


def _with_its_timeline(rows: list[AccountRequest]) -> AccountRequest:
    """The request of the first row, with ``timeline``: its events, oldest first."""
    if not rows:
        raise AccountRequest.DoesNotExist("AccountRequest matching query does not exist.")
    account_request = rows[0]
    account_request.timeline = [
        AuditEvent.from_db(
            row._state.db, _EVENT_FIELDS, [getattr(row, f"event_{n}") for n in _EVENT_FIELDS]
        )
        for row in rows
        if row.event_id is not None
    ]
    return account_request


def copy_source(user, source_id: str | None) -> AccountRequest | None:
    """The user's own earlier request named by ?copy=, for "copy into a new request"."""
    # isdigit() alone lets "²" and 5,000-digit numbers through to int(): a 500.
    if not source_id or not (source_id.isascii() and source_id.isdigit()) or len(source_id) > 18:
        return None
    return requests_with_instance().filter(pk=int(source_id), requester=user).first()
