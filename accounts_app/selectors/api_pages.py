"""Keyset pages for the JSON API's lists: a page costs what the first one does.

A cursor is the last row's key, handed back as `next_cursor`; nothing counts the
table and nothing uses OFFSET.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet, Subquery

from accounts_app.models import AccountRequest, Instance
from accounts_app.selectors.prepared import Prepared
from accounts_app.selectors.requests import prepared_viewer, requests_with_instance, visible_to

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


# What the API shows of an instance and judges it by (selectors.instances.blocker_messages
# reads the same names from a model): its lists read them as named tuples, not models.
INSTANCE_COLUMNS = (
    "instance_id",
    "name",
    "region_id",
    "engine_version",
    "architecture_type",
    "edition_type",
    "instance_type",
    "status",
    "instance_class",
    "connection_domain",
    "port",
    "vpc_auth_mode",
    "account_count",
    "is_gone",
    "synced_at",
)


def instance_page(
    instances: QuerySet[Instance], *, after: str | None, limit: int
) -> tuple[list[tuple], str | None]:
    """Instances (named tuples of INSTANCE_COLUMNS) in (region_id, instance_id) order
    after the instance `after`."""
    instances = instances.order_by("region_id", "instance_id")
    if after:
        region = Subquery(Instance.objects.filter(instance_id=after).values("region_id")[:1])
        instances = instances.filter(
            Q(region_id__gt=region) | Q(region_id=region, instance_id__gt=after)
        )
    rows = list(instances.values_list(*INSTANCE_COLUMNS, named=True)[: limit + 1])
    return rows[:limit], (rows[limit - 1].instance_id if len(rows) > limit else None)


def request_page(
    user, *, status: str, instance_id: str, mine: bool, before: int | None, limit: int
) -> tuple[list[AccountRequest], int | None]:
    """The requests this user may see (policy.visible_requests), newest first, below `before`.
    Compiled once per shape (the filters given, `mine`, the limit; selectors/prepared.py):
    building the query cost more than SQLite takes to run it."""
    given = {"status": status, "instance_id": instance_id, "before": before}
    values = {name: value for name, value in given.items() if value or value == 0}
    viewer = user if mine else prepared_viewer(user)
    rows = _REQUEST_PAGE.rows(viewer, shape=(mine, limit + 1), **values)
    return rows[:limit], (rows[limit - 1].pk if len(rows) > limit else None)


def _request_page(viewer, mine: bool, limit: int, **values) -> QuerySet[AccountRequest]:
    requests = visible_to(viewer, requests_with_instance())
    if mine:
        requests = requests.filter(requester=viewer)
    if "status" in values:
        requests = requests.filter(status=values["status"])
    if "instance_id" in values:
        requests = requests.filter(instance__instance_id=values["instance_id"])
    if "before" in values:
        requests = requests.filter(pk__lt=values["before"])
    return requests.order_by("-pk")[:limit]


_REQUEST_PAGE = Prepared(_request_page, status=str, instance_id=str, before=int)
