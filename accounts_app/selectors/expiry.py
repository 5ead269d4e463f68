"""Reads about time-boxed accounts: which request made an account, which expiries are due,
which reminders are due (services/expiry.py writes)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import JSONObject

from accounts_app.models import AccountRequest, FleetTarget, Instance, RequestKind
from accounts_app.selectors.json_rows import JsonRows

Status = AccountRequest.Status
MAKERS = [RequestKind.CREATE, RequestKind.ADOPT]


def made_accounts() -> QuerySet[AccountRequest]:
    """Requests that made (or adopted) an account that still carries their expiry: done,
    or a fleet done on some of its instances (approved still, or ended since)."""
    made = Q(fleet_size=0, status=Status.CREATED) | Q(
        fleet_size__gt=0, targets__status=FleetTarget.Status.DONE
    )
    return AccountRequest.objects.filter(
        made, kind__in=MAKERS, expiry_done_at__isnull=True
    ).distinct()


def account_maker(instance: Instance, account_name: str) -> AccountRequest | None:
    """The request that made this account (the newest: an account deleted and made again
    is the new one's), on its own instance or as one instance of a fleet."""
    on_instance = Q(fleet_size=0, instance=instance) | Q(
        fleet_size__gt=0, targets__instance=instance, targets__status=FleetTarget.Status.DONE
    )
    return (
        AccountRequest.objects.filter(
            on_instance, kind__in=MAKERS, status=Status.CREATED, account_name=account_name
        )
        .select_related("instance", "requester")
        .order_by("-finished_at", "-pk")
        .first()
    )


def due(now: datetime) -> QuerySet[AccountRequest]:
    """Accounts whose expiry has come and that are not deleted yet (overdue included)."""
    return (
        made_accounts()
        .filter(expires_at__lte=now)
        .select_related("instance", "requester")
        .order_by("expires_at", "pk")
    )


def instances_of(account_request: AccountRequest) -> list[Instance]:
    """The instances the request made its account on: one, or a fleet's done targets."""
    if not account_request.is_fleet:
        return [account_request.instance]
    targets = account_request.targets.filter(status=FleetTarget.Status.DONE)
    return [target.instance for target in targets.select_related("instance")]


def reminders_due(now: datetime, days: list[int]) -> QuerySet[AccountRequest]:
    """Accounts that expire within the longest reminder's reach."""
    if not days:
        return AccountRequest.objects.none()
    return (
        made_accounts()
        .filter(expires_at__gt=now, expires_at__lte=now + timedelta(days=max(days)))
        .select_related("instance", "requester")
    )


DELETIONS_SHOWN = 5
_DELETION_FIELDS = ("id", "status", "error_code")
_LAST_DELETIONS = (
    AccountRequest.objects.filter(about=OuterRef(OuterRef("pk")), kind=RequestKind.DELETE)
    .order_by("-pk")
    .values("pk")[:DELETIONS_SHOWN]
)
# The deletions the expiry of an account opened (the last five), as a JSON column of a
# query of the requests that made accounts: read them with deletions_from().
DELETIONS = Subquery(
    AccountRequest.objects.filter(pk__in=_LAST_DELETIONS)
    .order_by()
    .values("about")
    .annotate(rows=JsonRows(JSONObject(**{name: name for name in _DELETION_FIELDS})))
    .values("rows")
)


def deletions_from(rows: list[dict] | None) -> list[AccountRequest]:
    """The DELETIONS column's deletions, newest first."""
    deletions = [AccountRequest(**row) for row in rows or []]
    return sorted(deletions, key=lambda deletion: deletion.pk, reverse=True)
