"""Reads of the audit log and of created accounts, fast at a million events.

Every filter is an equality on an indexed column, a range on the pagination key
(seq), or a prefix range on an indexed text column; pages are keyset pages on
seq. Nothing counts the table and nothing uses OFFSET, so a page deep in the
log costs what the first one does.
"""

from __future__ import annotations

import itertools
import json
from collections import namedtuple
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from functools import reduce
from operator import or_
from urllib.parse import urlencode

from django.db import connection
from django.db.models import (
    CharField,
    Expression,
    F,
    FilteredRelation,
    Func,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Lower
from django.utils import timezone

from accounts_app.models import (
    AccountRequest,
    AuditEvent,
    Decision,
    FleetTarget,
    Folded,
    Instance,
)
from accounts_app.selectors.prepared import PREPARED_PAGES, JsonKeys, Prepared

# Above every character a text column can hold: q + MAX_CHAR bounds "starts with q".
MAX_CHAR = "\U0010ffff"

DEFAULT_PAGE_SIZE = 50
MIN_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
# The sizes the audit page's menu offers (the API takes any from MIN to MAX).
OFFERED_PAGE_SIZES = (10, 25, 50, 100)
# Above every seq: a page cursor beyond it is refused (the column cannot hold it).
MAX_SEQ = 2**63 - 1
EXPORT_BATCH_SIZE = 2_000

# What the audit page, the API and the export show of every event, in this order.
SHOWN_FIELDS = (
    "seq",
    "created_at",
    "actor_name",
    "action",
    "outcome",
    "request_id",
    "instance_id",
    "region_id",
    "account_name",
    "account_privilege",
    "alibaba_request_id",
    "error_code",
    "comment",
    "source_ip",
)

# What an export holds, in order. The hashes (with the message fields, hashed when
# set: accounts_app/audit/chain.py) let an auditor check a full export offline
# against the key. The export adds the message as the reader reads it.
EXPORT_FIELDS = (*SHOWN_FIELDS, "user_agent", "prev_hash", "hash", "message_id", "message_params")


@dataclass(frozen=True)
class AuditFilter:
    """The audit page's filters. Dates are calendar days in the viewer's time zone."""

    date_from: date | None = None
    date_to: date | None = None
    actor: str = ""
    action: str = ""
    instance_id: str = ""
    account_name: str = ""
    outcome: str = ""
    q: str = ""
    hide_sign_ins: bool = False

    def as_query(self) -> dict[str, str]:
        """The filters that are set, as URL query parameters."""
        return {
            name: "on" if value is True else str(value)
            for name, value in asdict(self).items()
            if value
        }

    def describe(self) -> str:
        return urlencode(self.as_query())


# Free-text search looks at the start of these, and of the instances' names.
SEARCHED_FIELDS = ("account_name", "instance_id")

# The quick filter "hide sign-ins": the routine ones (a refused sign-in stays shown).
SIGN_IN_ACTIONS = (AuditEvent.Action.LOGIN, AuditEvent.Action.LOGOUT)


def filtered_events(audit_filter: AuditFilter) -> QuerySet[AuditEvent]:
    """Events matching the filter."""
    return _matching(filter_values(audit_filter), hide_sign_ins=audit_filter.hide_sign_ins)


# The filters an event's column equals, by the column's name.
EQUALITY_FILTERS = ("action", "outcome", "actor_name", "account_name")


def filter_values(audit_filter: AuditFilter) -> dict[str, str | datetime]:
    """The filters that are set, as the values the queries compare: the dates as the
    times their days begin and end, the search's prefix with the end of its range."""
    f = audit_filter
    values = {
        "action": f.action,
        "outcome": f.outcome,
        "actor_name": f.actor,
        "account_name": f.account_name,
        "instance": f.instance_id,
        "prefix": f.q,
        "prefix_end": f.q + MAX_CHAR if f.q else "",
    }
    values = {name: value for name, value in values.items() if value}
    if f.date_from is not None:
        values["day_start"] = _midnight(f.date_from)
    if f.date_to is not None:
        values["day_end"] = _midnight(f.date_to + timedelta(days=1))
    return values


def _matching(values: dict, *, hide_sign_ins: bool, either: bool = True) -> QuerySet[AuditEvent]:
    """Events matching filter_values(). With either=False, without the filters that
    match one of several conditions: a page reads each of those alone (_page_query)."""
    events = AuditEvent.objects.all()
    for field_name in EQUALITY_FILTERS:
        if field_name in values:
            events = events.filter(**{field_name: values[field_name]})
    if hide_sign_ins:
        events = events.exclude(action__in=SIGN_IN_ACTIONS)
    if either:
        for conditions in alternatives(values):
            events = events.filter(reduce(or_, conditions))
    return _within_times(events, values.get("day_start"), values.get("day_end"))


def alternatives(values: dict) -> list[list[Q]]:
    """The filters an event matches by matching one of their conditions: the
    instance (its ID or its name) and the free text (the start of an account's name,
    of an instance's ID or of its name). Names are looked up inside the same query."""
    filters = []
    if given := values.get("instance"):
        filters.append([Q(instance_id=given), _instances_named(folded=Lower(Value(given)))])
    if prefix := values.get("prefix"):
        end = values["prefix_end"]
        starting = [_starts_with(field_name, prefix, end) for field_name in SEARCHED_FIELDS]
        named = _instances_named(folded__gte=Lower(Value(prefix)), folded__lt=Lower(Value(end)))
        filters.append([*starting, named])
    return filters


def _instances_named(**folded_name: Expression) -> Q:
    """Events of the instances whose name, in any case, matches."""
    named = Instance.objects.alias(folded=Folded("name")).filter(**folded_name)
    return Q(instance_id__in=named.values("instance_id"))


def _starts_with(field_name: str, prefix: str, end: str) -> Q:
    # A range, not LIKE: a plain btree index serves it on SQLite and on
    # PostgreSQL, where LIKE 'x%' needs a pattern_ops index. The range means
    # "starts with" under a bytewise collation: SQLite's BINARY, and on
    # PostgreSQL the "C" collation migration 0003 gives both searched columns.
    # (No LIKE on top for safety: it ruins PostgreSQL's row estimates, and with
    # them the choice between the index and a walk down seq.)
    return Q(**{f"{field_name}__gte": prefix, f"{field_name}__lt": end})


def _within_times(
    events: QuerySet[AuditEvent], start: datetime | None, end: datetime | None
) -> QuerySet[AuditEvent]:
    """Limit to [start, end): filter_values() makes them whole days in the current
    time zone.

    The time range becomes a seq range inside the same query: from the first
    event at or after the start to the last one before the end, each found one
    step down the created_at index. Pages then walk the seq index between the
    two instead of sorting every event of the range. This is exact because
    record_event() never lets created_at go backwards along the chain.
    """
    if start is not None:
        first = AuditEvent.objects.filter(created_at__gte=start)
        first = first.order_by("created_at", "seq").values("seq")[:1]
        events = events.filter(seq__gte=Subquery(first))
    if end is not None:
        last = AuditEvent.objects.filter(created_at__lt=end)
        last = last.order_by("-created_at", "-seq").values("seq")[:1]
        events = events.filter(seq__lte=Subquery(last))
    return events


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


# What the audit page and the API show of an event (with its message): not the hashes,
# not the user agent.
PAGE_FIELDS = (*SHOWN_FIELDS, "message_id", "message_params")

# An event as a page shows it: read as a tuple, which costs half what building the
# model instance did (the page query's rows were a fifth of the audit page's CPU).
EventRow = namedtuple("EventRow", PAGE_FIELDS)


@dataclass(frozen=True)
class EventPage:
    events: list[EventRow]
    # Query values for the neighbouring pages: ?after=<newer_than> shows newer
    # events, ?before=<older_than> older ones; None when there is none.
    newer_than: int | None
    older_than: int | None


def event_page(
    audit_filter: AuditFilter,
    *,
    before: int | None = None,
    after: int | None = None,
    size: int = DEFAULT_PAGE_SIZE,
) -> EventPage:
    """One page of matching events, newest first, in one query.

    Keyset pagination on seq: a page is "the `size` events below (or above) a
    seq", so new events never shift the pages a reader is walking through.
    One more row than shown tells whether the walk can go on.
    """
    values = filter_values(audit_filter)
    if after is not None:
        rows = _page_rows(audit_filter, values, after, "seq", size + 1)
        has_newer = len(rows) > size
        rows = rows[:size][::-1]
        # We came from an older page, so there is one.
        has_older = bool(rows)
    else:
        rows = _page_rows(audit_filter, values, before, "-seq", size + 1)
        has_older = len(rows) > size
        rows = rows[:size]
        has_newer = before is not None and bool(rows)
    return EventPage(
        events=rows,
        newer_than=rows[0].seq if has_newer else None,
        older_than=rows[-1].seq if has_older else None,
    )


# The page sizes whose queries are kept compiled (the size is written into the SQL).
PREPARED_SIZES = OFFERED_PAGE_SIZES


def _page_rows(audit_filter, values: dict, cursor: int | None, order: str, limit: int) -> list:
    """The page's `limit` rows from `cursor` on, in `order`. Compiled once per shape
    (which filters are set, the order, the size): building and compiling the query
    cost more than running it (2 ms of an instance's page, SQLite 0.4)."""
    shape = (audit_filter.hide_sign_ins, order, limit)
    if cursor is not None:
        values = {**values, "cursor": cursor}
    if limit - 1 in PREPARED_SIZES:
        rows = _EVENT_PAGE.tuples(None, shape=shape, **values)
    else:
        rows = _page_query(None, *shape, **values)
    return [EventRow._make(row) for row in rows]


def _page_query(_viewer, hide_sign_ins: bool, order: str, limit: int, **values) -> QuerySet:
    """The events of filter_values() from values["cursor"] on (below it newest first,
    above it oldest first), as tuples of PAGE_FIELDS."""
    events = _matching(values, hide_sign_ins=hide_sign_ins, either=False)
    if "cursor" in values:
        lookup = "seq__lt" if order == "-seq" else "seq__gt"
        events = events.filter(**{lookup: values["cursor"]})
    choices = alternatives(values)
    if choices and connection.features.supports_slicing_ordering_in_compound:
        # PostgreSQL estimates "one condition or another" badly: it would walk down
        # seq filtering every event (21 ms for an instance's ID at a million events,
        # the whole log for a quiet one), or fetch every event of each prefix range
        # and sort them all (5 ms for a prefix shared by 1,500 events). Instead each
        # condition of the last such filter yields its first `limit` seqs from its
        # index alone (index-only scans), the union is cut to `limit`, and only those
        # rows are read; where a condition is common, the planner walks down seq
        # instead. (With both filters, the instance's stays whole in each branch.)
        *whole, split = choices
        for conditions in whole:
            events = events.filter(reduce(or_, conditions))
        branches = [
            events.filter(condition).order_by(order).values("seq")[:limit] for condition in split
        ]
        events = AuditEvent.objects.filter(seq__in=branches[0].union(*branches[1:], all=True))
    elif choices:
        # SQLite cannot limit inside a UNION: it plans the OR as one index search per
        # condition and sorts what they find, quick unless a prefix is shared by much
        # of the log ("r-": 60-80 ms at a million). It sorts the matches' seqs alone,
        # then reads the page's rows: sorting every match's whole row took twice as long.
        for conditions in choices:
            events = events.filter(reduce(or_, conditions))
        events = AuditEvent.objects.filter(seq__in=events.order_by(order).values("seq")[:limit])
    return events.order_by(order).values_list(*PAGE_FIELDS)[:limit]


_EVENT_PAGE = Prepared(
    _page_query,
    action=str,
    outcome=str,
    actor_name=str,
    account_name=str,
    instance=str,
    prefix=str,
    prefix_end=str,
    day_start=datetime,
    day_end=datetime,
    cursor=int,
)


def export_batches(audit_filter: AuditFilter, *, batch_size: int | None = None) -> Iterator[list]:
    """Every matching event as a tuple of EXPORT_FIELDS, newest first, a list per batch.

    Keyset batches keep memory flat however many events match; events recorded
    after the first batch was read are left out, so the export is the log as it
    stood when it began (its own EXPORT_DOWNLOADED event included). The ORM writes
    each batch's SQL, a plain cursor reads it: the ORM's row iterator was a fifth of
    a large export's time.
    """
    batch_size = batch_size or EXPORT_BATCH_SIZE
    columns = (
        UtcIsoformat("created_at") if name == "created_at" else name for name in EXPORT_FIELDS
    )
    events = filtered_events(audit_filter).order_by("-seq").values_list(*columns)
    before = None
    while True:
        batch = events.filter(seq__lt=before) if before is not None else events
        sql, params = batch[:batch_size].query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if rows:
            yield rows
        if len(rows) < batch_size:
            return
        before = rows[-1][0]


class UtcIsoformat(Func):
    """A datetime column as text, exactly as datetime.isoformat() writes it in UTC
    ("2026-03-01T00:30:15.123456+00:00", no fraction on a whole second), formatted by
    the database: an export of a million events then builds no datetime object."""

    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra):
        # Django stores str() of the naive UTC datetime: "2026-03-01 00:30:15.123456".
        template = "replace(%(expressions)s, ' ', 'T') || '+00:00'"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_postgresql(self, compiler, connection, **extra):
        template = (
            "replace(to_char(%(expressions)s AT TIME ZONE 'UTC', "
            """'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '') || '+00:00'"""
        )
        return self.as_sql(compiler, connection, template=template, **extra)


# --- Created accounts: one row per (instance, account) created -------------------


@dataclass(frozen=True)
class CreatedFilter:
    """The created-accounts page's filters (dates: calendar days in the viewer's zone)."""

    instance: str = ""  # part of an instance's ID or name
    requester: str = ""
    privilege: str = ""
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""  # part of the account's name or description

    def as_query(self) -> dict[str, str]:
        return {name: str(value) for name, value in asdict(self).items() if value}


@dataclass(frozen=True)
class CreatedAccount:
    """One account the dashboard created: a single request's, or one instance's of a
    fleet request (also when other instances of that fleet failed)."""

    request: AccountRequest
    instance: Instance
    finished_at: datetime | None
    alibaba_request_id: str


def _creations(created_filter: CreatedFilter, first: int | None = None) -> QuerySet:
    """(request, instance, time, RequestId) of every creation matching, newest first:
    the done single requests and the done instances of fleet requests, in one query.
    Only the `first` are read where a slice of them is wanted."""
    create = AccountRequest.Kind.CREATE
    singles = AccountRequest.objects.filter(
        kind=create, status=AccountRequest.Status.CREATED, fleet_size=0
    )
    singles = _created_matching(singles, created_filter, request="", instance="instance__")
    fleets = FleetTarget.objects.filter(status=FleetTarget.Status.DONE, request__kind=create)
    fleets = _created_matching(fleets, created_filter, request="request__", instance="instance__")
    columns = ("c_request", "c_instance", "c_time", "c_alibaba", *_INSTANCE_COLUMNS)
    singles = singles.annotate(
        c_request=F("pk"),
        c_instance=F("instance_id"),
        c_time=F("finished_at"),
        c_alibaba=F("alibaba_request_id"),
    ).values(*columns)
    fleets = fleets.annotate(
        c_request=F("request_id"),
        c_instance=F("instance_id"),
        c_time=F("finished_at"),
        c_alibaba=F("alibaba_request_id"),
    ).values(*columns)
    newest_first = ("-c_time", "-c_request", "-c_instance")
    if first is not None and connection.features.supports_slicing_ordering_in_compound:
        # PostgreSQL sorted every creation for a page's rows (70 ms at 35,000); each
        # part's own first rows come from the index of (status, finished_at). SQLite
        # merges the two parts in order already, and cannot limit them.
        singles, fleets = (
            singles.order_by(*newest_first)[:first],
            fleets.order_by(*newest_first)[:first],
        )
    else:
        # Each part unordered (the models' default orderings): a compound query orders once.
        singles, fleets = singles.order_by(), fleets.order_by()
    return singles.union(fleets, all=True).order_by(*newest_first)


def _created_matching(
    rows: QuerySet, created_filter: CreatedFilter, *, request: str, instance: str
) -> QuerySet:
    """`rows` under the filter; `request` and `instance` prefix the fields of each."""
    f = created_filter
    if f.instance:
        rows = rows.filter(
            Q(**{f"{instance}instance_id__icontains": f.instance})
            | Q(**{f"{instance}name__icontains": f.instance})
        )
    if f.requester:
        rows = rows.filter(**{f"{request}requester__username__iexact": f.requester})
    if f.privilege:
        rows = rows.filter(**{f"{request}account_privilege": f.privilege})
    if f.q:
        rows = rows.filter(
            Q(**{f"{request}account_name__icontains": f.q})
            | Q(**{f"{request}account_description__icontains": f.q})
        )
    if f.date_from:
        rows = rows.filter(finished_at__gte=_midnight(f.date_from))
    if f.date_to:
        rows = rows.filter(finished_at__lt=_midnight(f.date_to + timedelta(days=1)))
    return rows


def created_account_page(
    created_filter: CreatedFilter, *, page: int = 1, size: int = DEFAULT_PAGE_SIZE
) -> tuple[list[CreatedAccount], bool]:
    """One page of created accounts, newest first, and whether there is a next page.

    Two queries whatever the page size: the creations (with their instances), then
    their requests (with the requester and who approved them).
    """
    return created_account_slice(created_filter, start=(page - 1) * size, size=size)


def created_account_slice(
    created_filter: CreatedFilter, *, start: int, size: int
) -> tuple[list[CreatedAccount], bool]:
    """`size` created accounts from the `start`-th, newest first, and whether more follow
    (the page's numbers and the API's cursor are both counts of rows). The list as it
    opens (no filter, one of its first pages) is read through a query compiled once."""
    if created_filter == CreatedFilter() and start % size == 0 and start < size * PREPARED_PAGES:
        rows = _UNFILTERED_CREATIONS.values(None, shape=(start, size))
    else:
        end = start + size + 1
        rows = list(_creations(created_filter, first=end)[start:end])
    return _created_accounts(rows[:size]), len(rows) > size


def _unfiltered_creations(_viewer, start: int, size: int) -> QuerySet:
    end = start + size + 1
    return _creations(CreatedFilter(), first=end)[start:end]


# Compiled once per process (selectors/prepared.py): building the union and compiling it
# cost five times what SQLite takes to run it (docs/benchmarks.md, eighth round). A
# slice's LIMIT and OFFSET are written into the SQL: the first pages of each size are
# kept compiled, the others built each time.
_UNFILTERED_CREATIONS = Prepared(_unfiltered_creations)


def created_account_export(created_filter: CreatedFilter) -> Iterator[CreatedAccount]:
    """Every matching created account, newest first, a batch of queries per 1,000."""
    for batch in itertools.batched(_creations(created_filter).iterator(), 1_000):
        yield from _created_accounts(list(batch))


def _created_accounts(rows: list[dict]) -> list[CreatedAccount]:
    requests = _requests_with_approvers({row["c_request"] for row in rows}) if rows else {}
    return [
        CreatedAccount(
            request=requests[row["c_request"]],
            instance=_instance_of(row),
            finished_at=row["c_time"],
            alibaba_request_id=row["c_alibaba"],
        )
        for row in rows
    ]


def _requests_with_approvers(pks: set[int]) -> dict[int, AccountRequest]:
    """The requests (with their requester) by key, each with ``approver_names``: who
    approved it, in the order they did. One query: a row per approval (one row, with no
    name, for a request nobody approved)."""
    rows = _REQUESTS_WITH_APPROVERS.rows(None, keys=json.dumps(sorted(pks)))
    requests: dict[int, AccountRequest] = {}
    for row in rows:
        request = requests.setdefault(row.pk, row)
        if request is row:
            request.approver_names = []
        if row.approver_name is not None:
            request.approver_names.append(row.approver_name)
    return requests


def _requests_with_approver_rows(_viewer, *, keys: str) -> QuerySet[AccountRequest]:
    approving = FilteredRelation(
        "decisions", condition=Q(decisions__verdict=Decision.Verdict.APPROVE)
    )
    return (
        AccountRequest.objects.filter(pk__in=JsonKeys(keys))
        .select_related("requester")
        .only(*_REQUEST_FIELDS_SHOWN)
        .annotate(approving=approving, approver_name=F("approving__approver__username"))
        .order_by("pk", "approving__created_at", "approving__pk")
    )


# Compiled once per process, whatever the number of requests (their keys are one JSON
# text): building it cost four times what running it does.
_REQUESTS_WITH_APPROVERS = Prepared(_requests_with_approver_rows, keys=str)


# What the page, the API and the export show of a created account's request and
# instance; the other columns are left unread (a third of the page's CPU went on
# building them: docs/benchmarks.md, sixth round). Reading another one later costs a
# query per row, which the query-count tests catch.
_REQUEST_FIELDS_SHOWN = (
    "account_name",
    "account_privilege",
    "account_description",
    # account_expires_at's
    "kind",
    "status",
    "expiry_done_at",
    "expires_at",
    "fleet_size",
    "requester__username",
)
# The instance's columns ride in the creations' query (both of its parts join the
# instance under the same name): no query of their own.
_INSTANCE_FIELDS = ("id", "instance_id", "name", "region_id")
_INSTANCE_COLUMNS = tuple(f"instance__{name}" for name in _INSTANCE_FIELDS)


def _instance_of(row: dict) -> Instance:
    return Instance.from_db(
        connection.alias, _INSTANCE_FIELDS, [row[column] for column in _INSTANCE_COLUMNS]
    )
