"""Reads of the accounts the sweep knows (KnownAccount): the drift page and an instance's
accounts. Each is one query, whatever the number of instances."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from accounts_app.models import AccountRequest, Instance, KnownAccount

DRIFT_ROWS_SHOWN = 500


def _drifting(instance_id: str = "") -> QuerySet[KnownAccount]:
    rows = KnownAccount.objects.exclude(drift="")
    if instance_id:
        rows = rows.filter(instance__instance_id__icontains=instance_id)
    return rows


def drift_rows(*, instance_id: str = "", drift: str = "") -> list[KnownAccount]:
    """The drifting accounts by instance, each with the request that created it."""
    rows = _drifting(instance_id)
    if drift:
        rows = rows.filter(drift=drift)
    rows = rows.select_related("instance", "created_by__requester")
    return list(rows.order_by("instance__instance_id", "account_name")[:DRIFT_ROWS_SHOWN])


def drift_counts(*, instance_id: str = "") -> list[tuple[str, str, int]]:
    """(drift, its label, how many accounts) for each kind, under the instance filter."""
    counted = _drifting(instance_id).values("drift").annotate(n=Count("pk")).order_by()
    counts = {row["drift"]: row["n"] for row in counted}
    return [(value, label, counts.get(value, 0)) for value, label in KnownAccount.Drift.choices]


def instance_accounts(instance: Instance) -> list[KnownAccount]:
    """Every account the last sweep saw on the instance, managed or not."""
    return list(
        KnownAccount.objects.filter(instance=instance)
        .select_related("created_by__requester")
        .order_by("account_name")
    )


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
