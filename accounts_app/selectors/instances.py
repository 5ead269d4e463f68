"""Reads of the instance inventory for the instances pages.

A page of the list costs a fixed number of queries whatever the estate's size: the
page with its count (selectors.paging), one query for the filter choices, and one for
the last sync time with the newest sync run. Badges are computed in Python from the
row, by the rules module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.core.paginator import Page
from django.db import connections
from django.db.models import Func, Q, QuerySet, Subquery, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from accounts_app import rules, vpc_auth, wording
from accounts_app.background.models import SyncRun
from accounts_app.models import AccountRequest, Instance
from accounts_app.selectors.paging import PreparedPages, counted_page
from accounts_app.selectors.prepared import Prepared
from accounts_app.selectors.requests import prepared_viewer, requests_with_instance, visible_to

# The filterable columns: query-string name -> model field.
FILTER_FIELDS = {
    "region": "region_id",
    "engine": "engine_version",
    "architecture": "architecture_type",
    "status": "status",
}


@dataclass(frozen=True)
class InstanceFilter:
    q: str = ""
    region: str = ""
    engine: str = ""
    architecture: str = ""
    status: str = ""
    gone: bool = False


@dataclass(frozen=True)
class InstanceRow:
    """An instance (a named tuple of LIST_COLUMNS) with the reasons no account can be
    created on it."""

    instance: tuple
    blockers: list[str]
    password_free: bool

    @property
    def account_usage(self) -> str:
        count = "?" if self.instance.account_count is None else self.instance.account_count
        return f"{count} / {rules.MAX_ACCOUNTS_PER_INSTANCE}"


def instances_matching(
    text: str, instances: QuerySet[Instance] | None = None
) -> QuerySet[Instance]:
    """The instances a search for `text` finds, among `instances` (default: all).

    `key:value` finds the instances whose tag `key` has that value (any case), `key:`
    those that have the tag `key`; any other text finds those whose ID, name, region or
    a tag's value contains it. The one definition of instance search: the list, the
    pickers and fleet requests ask this.
    """
    instances = Instance.objects.all() if instances is None else instances
    text = text.strip()
    if not text:
        return instances
    key, colon, value = text.partition(":")
    if colon and key.strip() and value.strip():
        tag_value = KeyTextTransform(key.strip(), "tags")
        return instances.alias(tag_value=tag_value).filter(tag_value__iexact=value.strip())
    if colon and key.strip():
        return instances.filter(tags__has_key=key.strip())
    # The tags' values, not the JSON's text: that holds every key too (and its quotes
    # and colons), so a key alone ("env") found every tagged instance.
    return instances.alias(tag_values=TagValues("tags")).filter(
        Q(instance_id__icontains=text)
        | Q(name__icontains=text)
        | Q(region_id__icontains=text)
        | Q(tag_values__icontains=text)
    )


class TagValues(Func):
    """A JSON object's values as one text, one per line (NULL for no tag): a search
    then matches inside one value, never across the keys or from one value to the next
    (the search box sends no line break)."""

    output_field = TextField()

    def as_sqlite(self, compiler, connection, **extra):
        template = "(SELECT group_concat(value, char(10)) FROM json_each(%(expressions)s))"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_postgresql(self, compiler, connection, **extra):
        template = "(SELECT string_agg(value, chr(10)) FROM jsonb_each_text(%(expressions)s))"
        return self.as_sql(compiler, connection, template=template, **extra)


def filtered_instances(instance_filter: InstanceFilter) -> QuerySet[Instance]:
    instances = Instance.objects.all()
    if not instance_filter.gone:
        instances = instances.filter(is_gone=False)
    instances = instances_matching(instance_filter.q, instances)
    for name, field in FILTER_FIELDS.items():
        if value := getattr(instance_filter, name):
            instances = instances.filter(**{field: value})
    return instances.order_by("region_id", "instance_id")


def filter_choices() -> dict[str, list[str]]:
    """The distinct values of each filterable column, in one query that seeks each
    value in its column's index (_distinct_values_sql) rather than reading every row."""
    connection = connections[Instance.objects.db]
    with connection.cursor() as cursor:
        cursor.execute(_distinct_values_sql(connection.ops.quote_name))
        found = cursor.fetchall()
    names = list(FILTER_FIELDS)
    values: dict[str, list[str]] = {name: [] for name in names}
    for column, value in found:
        if value:
            values[names[column]].append(value)
    return {name: sorted(present) for name, present in values.items()}


def _distinct_values_sql(quote) -> str:
    """Each filterable column's distinct values, a (column number, value) row each.

    A loose index scan: from the column's smallest value, each step asks its index for
    the next larger one, so the steps are the distinct values (a few dozen), not the
    instances (thousands). Neither SQLite nor PostgreSQL does this for DISTINCT, which
    read all 5,000 entries of an index (docs/benchmarks.md, eighth round). Each column
    has an index of its own or leads one (Instance.Meta.indexes).
    """
    table = quote(Instance._meta.db_table)
    # Only the model's own names, quoted, go into the text: no value does.
    steps, rows = [], []
    for number, field in enumerate(FILTER_FIELDS.values()):
        column, step = quote(Instance._meta.get_field(field).column), f"step{number}"
        steps.append(
            f"{step}(value) AS (SELECT MIN({column}) FROM {table} UNION ALL "  # noqa: S608
            f"SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > {step}.value) "
            f"FROM {step} WHERE {step}.value IS NOT NULL)"
        )
        rows.append(f"SELECT {number}, value FROM {step} WHERE value IS NOT NULL")  # noqa: S608
    return f"WITH RECURSIVE {', '.join(steps)} {' UNION ALL '.join(rows)}"


def inventory_summary() -> tuple[dict[str, list[str]], datetime | None, SyncRun | None]:
    """filter_choices(), the time of the last sync and the newest sync run, in two
    queries: the distinct values of the filterable columns (from their indexes), and the
    newest synced instance carrying the newest run (uncorrelated subqueries, compiled
    once per process). An estate with no instance yet asks for the run apart
    (its first sync)."""
    newest = _NEWEST_SYNC.values(None)
    if not newest:
        return filter_choices(), None, SyncRun.objects.first()
    row = newest[0]
    run = _run_from(*(row[f"run_{name}"] for name in _RUN_COLUMNS))
    return filter_choices(), row["synced_at"], run


# What the sync progress shows of the newest run (instances/_sync_progress.html); its
# JSON as text, decoded once.
_RUN_COLUMNS = ("pk", "status", "regions_text", "progress_text")


def _newest_sync(_viewer) -> QuerySet[Instance]:
    newest_run = SyncRun.objects.order_by("-started_at").annotate(
        regions_text=Cast("regions", TextField()), progress_text=Cast("progress", TextField())
    )
    runs = {f"run_{name}": Subquery(newest_run.values(name)[:1]) for name in _RUN_COLUMNS}
    return Instance.objects.order_by("-synced_at").values("synced_at").annotate(**runs)[:1]


# Built and compiled once per process: building it cost more CPU than SQLite takes to
# run it (docs/benchmarks.md, sixth round).
_NEWEST_SYNC = Prepared(_newest_sync)


def _run_from(pk=None, status=None, regions=None, progress=None) -> SyncRun | None:
    """The run with the fields its progress reads (and its key, for the live counts of
    the regions under way); the others are left unset: only shown, never saved."""
    if pk is None:
        return None
    return SyncRun(pk=pk, status=status, regions=json.loads(regions), progress=json.loads(progress))


def blocker_messages(instance: Instance) -> list[str]:
    """Why no account can be created there, per the last sync; worded by rules."""
    if instance.is_gone:
        return [str(wording.INSTANCE_GONE)]
    return [
        violation.message
        for violation in rules.instance_blockers(
            instance_status=instance.status,
            engine_version=instance.engine_version,
            account_count=instance.account_count or 0,
        )
    ]


def instance_list_page(instance_filter: InstanceFilter, number, size: int) -> Page:
    """A page of the list, each row a named tuple of LIST_COLUMNS (instance_rows() takes
    them). Without a search (LIKE wraps its text), a query compiled once per shape."""
    f = instance_filter
    if f.q:
        return counted_page(filtered_instances(f), number, size, columns=LIST_COLUMNS)
    values = {name: value for name in FILTER_FIELDS if (value := getattr(f, name))}
    return _LIST_PAGES.page(number, size, f.gone, **values)


def _listed(gone: bool, **values) -> QuerySet[Instance]:
    return filtered_instances(InstanceFilter(gone=gone, **values))


def instance_rows(instances: list[tuple]) -> list[InstanceRow]:
    """The rows of the list, from named tuples of LIST_COLUMNS."""
    return [
        InstanceRow(
            instance=instance,
            blockers=blocker_messages(instance),
            password_free=vpc_auth.is_password_free(instance.vpc_auth_mode),
        )
        for instance in instances
    ]


# What the list shows of an instance and judges it by (blocker_messages() reads the
# same names from a model): read as named tuples, which cost less than models
# (docs/benchmarks.md, eighth round).
LIST_COLUMNS = (
    "instance_id",
    "name",
    "tags",
    "region_id",
    "engine_version",
    "architecture_type",
    "status",
    "account_count",
    "vpc_auth_mode",
    "is_gone",
)
_LIST_PAGES = PreparedPages(_listed, LIST_COLUMNS, **dict.fromkeys(FILTER_FIELDS, str))


def requests_for_instance(instance: Instance, user, limit: int) -> list[AccountRequest]:
    """The `limit` newest requests made for an instance that this user may open.
    Compiled once per process and viewer's permissions (selectors/prepared.py)."""
    viewer = prepared_viewer(user)
    return _REQUESTS_FOR_INSTANCE.rows(viewer, shape=(limit,), instance=instance.pk)


def _requests_for_instance(viewer, limit: int, *, instance: int) -> QuerySet[AccountRequest]:
    requests = visible_to(viewer, requests_with_instance().filter(instance=instance))
    return requests.order_by("-created_at")[:limit]


_REQUESTS_FOR_INSTANCE = Prepared(_requests_for_instance, instance=int)


# The instance pickers' answers: enough to choose from, few enough to stay cheap at any
# estate size.
MATCHES_SHOWN = 50


def instance_matches(
    text: str, *, include_gone: bool = False, limit: int = MATCHES_SHOWN
) -> tuple[list[Instance], bool]:
    """Instances that `text` finds (instances_matching), and whether there were more.

    One query: `limit + 1` rows tell whether the answer was cut.
    """
    instances = Instance.objects.all() if include_gone else Instance.objects.filter(is_gone=False)
    instances = instances_matching(text, instances)
    found = list(instances.order_by("region_id", "instance_id")[: limit + 1])
    return found[:limit], len(found) > limit


def instance_by_id(instance_id: str) -> Instance | None:
    """The instance of this ID, or None. A NUL character is no ID, and PostgreSQL refuses
    it in a query (the form redrawn with what was typed looks the ID up)."""
    if "\x00" in instance_id:
        return None
    return Instance.objects.filter(instance_id=instance_id.strip()).first()
