"""Reads of the accounts the sweep knows (KnownAccount): the drift page and an instance's
accounts. Each is one query, whatever the number of instances."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.paginator import Page
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import JSONObject

from accounts_app.models import AccountRequest, Instance, KnownAccount
from accounts_app.selectors.json_rows import JsonRows, row_time
from accounts_app.selectors.paging import PreparedPages, counted_page
from accounts_app.selectors.partial_models import model_from_columns
from accounts_app.selectors.prepared import Prepared


def _drifting(instance_id: str = "") -> QuerySet[KnownAccount]:
    # "Not empty" as a range, which the (drift, instance) index serves.
    rows = KnownAccount.objects.filter(drift__gt="")
    if instance_id:
        rows = rows.filter(instance__instance_id__icontains=instance_id)
    return rows


def drift_rows(*, instance_id: str = "", drift: str = "") -> QuerySet[KnownAccount]:
    """The drifting accounts by instance."""
    rows = _drifting(instance_id)
    if drift:
        rows = rows.filter(drift=drift)
    # By instance, in the order of the (instance, account name) index: a page is its first
    # rows. By the instances' IDs, every drifting account was joined and sorted first
    # (5 ms at 4,400 of them, against 0.3 ms).
    return rows.order_by("instance_id", "account_name")


def drift_page(*, instance_id: str = "", drift: str = "", number, size: int) -> Page:
    """A page of drift_rows(), each row a named tuple of DRIFT_COLUMNS. Without an
    instance filter (LIKE wraps its text), a query compiled once per shape."""
    if instance_id:
        rows = drift_rows(instance_id=instance_id, drift=drift)
        return counted_page(rows, number, size, columns=DRIFT_COLUMNS)
    return _DRIFT_PAGES.page(number, size, **({"drift": drift} if drift else {}))


# What the drift page shows of an account, its instance and the request that created it
# (rows.drift_rows reads them by these names).
DRIFT_COLUMNS = (
    "account_name",
    "privilege",
    "description",
    "drift",
    "is_gone",
    "swept_at",
    "instance__instance_id",
    "created_by_id",
    "created_by__requester__username",
)
_DRIFT_PAGES = PreparedPages(drift_rows, DRIFT_COLUMNS, drift=str)


def drift_counts(*, instance_id: str = "") -> list[tuple[str, str, int]]:
    """(drift, its label, how many accounts) for each kind, under the instance filter."""
    counted = _drifting(instance_id).values("drift").annotate(n=Count("pk")).order_by()
    counts = {row["drift"]: row["n"] for row in counted}
    return [(value, label, counts.get(value, 0)) for value, label in KnownAccount.Drift.choices]


def instance_with_accounts(instance_id: str) -> Instance:
    """The instance, with every account the last sweep saw on it, managed or not, by
    name (``known_accounts_seen``), in one query. Raises Instance.DoesNotExist."""
    found = _INSTANCE_WITH_KNOWN_ROWS.rows(None, instance_id=instance_id)
    if not found:
        raise Instance.DoesNotExist(f"no instance {instance_id}")
    instance = found[0]
    accounts = [_known_account(instance, row) for row in instance.known_rows or []]
    # Sorted here: the rows' order in the JSON array is not the database's to keep.
    instance.known_accounts_seen = sorted(accounts, key=lambda known: known.account_name)
    return instance


# What the instance's page shows of each account, and of the request that created it.
_KNOWN_FIELDS = (
    "id",
    "account_name",
    "account_type",
    "privilege",
    "status",
    "description",
    "is_gone",
    "drift",
    "first_seen_at",
)
# (Keys apart from the account's own: the request's status is "request_status".)
_MAKER_FIELDS = {
    "request_id": "created_by_id",
    "kind": "created_by__kind",
    "request_status": "created_by__status",
    "finished_at": "created_by__finished_at",
    "expires_at": "created_by__expires_at",
    "expiry_done_at": "created_by__expiry_done_at",
    "requester_id": "created_by__requester_id",
    "requester_name": f"created_by__requester__{get_user_model().USERNAME_FIELD}",
}
_KNOWN_ROWS = Subquery(
    KnownAccount.objects.filter(instance=OuterRef("pk"))
    .order_by()
    .values("instance")
    .annotate(rows=JsonRows(JSONObject(**{n: n for n in _KNOWN_FIELDS}, **_MAKER_FIELDS)))
    .values("rows")
)


def _instance_with_known_rows(_viewer, *, instance_id: str) -> QuerySet[Instance]:
    return Instance.objects.annotate(known_rows=_KNOWN_ROWS).filter(instance_id=instance_id)


# Compiled once per process: building the accounts' JSON (seventeen keys) and compiling
# it cost more than the rest of the query (docs/benchmarks.md, eighth round).
_INSTANCE_WITH_KNOWN_ROWS = Prepared(_instance_with_known_rows, instance_id=str)


def _known_account(instance: Instance, row: dict) -> KnownAccount:
    """The account, as much of it as the page shows."""
    db = instance._state.db
    columns = {name: row[name] for name in _KNOWN_FIELDS}
    columns["is_gone"] = bool(row["is_gone"])  # SQLite's JSON has 0 and 1 for a boolean
    columns["first_seen_at"] = row_time(row["first_seen_at"])
    known = model_from_columns(KnownAccount, db, columns)
    known.instance = instance
    known.created_by = _maker(row, db)
    return known


def _maker(row: dict, db: str) -> AccountRequest | None:
    """The request that created the account, as much of it as the page shows."""
    if row["request_id"] is None:
        return None
    # What account_expires_at and the cell's links read.
    made = model_from_columns(
        AccountRequest,
        db,
        {
            "id": row["request_id"],
            "kind": row["kind"],
            "status": row["request_status"],
            "finished_at": row_time(row["finished_at"]),
            "expires_at": row_time(row["expires_at"]),
            "expiry_done_at": row_time(row["expiry_done_at"]),
            "requester_id": row["requester_id"],
        },
    )
    user = get_user_model()
    made.requester = model_from_columns(
        user, db, {"id": row["requester_id"], user.USERNAME_FIELD: row["requester_name"]}
    )
    return made


def final_state(account_request: AccountRequest) -> KnownAccount | None:
    """What the last read of the instance showed of a change's account (None: never read,
    or nothing known of it)."""
    return KnownAccount.objects.filter(
        instance_id=account_request.instance_id, account_name=account_request.account_name
    ).first()


def changes_settling(instance: Instance, *, excluding: int | None = None) -> list[AccountRequest]:
    """The instance's changes Alibaba is still applying (background/follow.py): a next
    change on the instance waits for them."""
    settling = AccountRequest.objects.filter(instance=instance, settling_since__isnull=False)
    return list(settling.exclude(pk=excluding).order_by("settling_since")[:5])
