"""Reads for fleet requests: which instances a selector names, and a run's progress."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from accounts_app.models import AccountRequest, FleetTarget, Instance
from accounts_app.selectors.instances import instances_matching

# A fleet request names at most this many instances, whatever the policy says: one
# run calls CreateAccount once per instance within the request that holds the password.
MAX_FLEET_SIZE = 200


@dataclass(frozen=True)
class FleetSelector:
    """What the requester searched for: every field given must match."""

    name: str = (
        ""  # a search as the instance list takes it: part of the ID, name or a tag, or key:value
    )
    region: str = ""
    engine: str = ""

    @property
    def is_empty(self) -> bool:
        return not (self.name.strip() or self.region or self.engine)


def selector_condition(selector: FleetSelector) -> Q:
    """The selector's region and engine as a query; its text is searched as the
    instance list searches (instances_matching: ID, name, region, tags, key:value)."""
    condition = Q(is_gone=False)
    if selector.region:
        condition &= Q(region_id=selector.region)
    if selector.engine:
        condition &= Q(engine_version=selector.engine)
    return condition


def selected_instances(selector: FleetSelector) -> QuerySet[Instance]:
    """The instances a selector resolves to, in the order the confirmation lists them;
    nothing for an empty selector (it would name the whole estate)."""
    if selector.is_empty:
        return Instance.objects.none()
    chosen = Instance.objects.filter(selector_condition(selector))
    return instances_matching(selector.name, chosen).order_by("region_id", "instance_id")[
        : MAX_FLEET_SIZE + 1
    ]


def instances_by_id(instance_ids: list[str]) -> tuple[list[Instance], list[str]]:
    """The known, present instances of these IDs in the given order, and the IDs unknown."""
    found = {
        row.instance_id: row
        for row in Instance.objects.filter(instance_id__in=instance_ids, is_gone=False)
    }
    unique = list(dict.fromkeys(instance_ids))
    return [found[i] for i in unique if i in found], [i for i in unique if i not in found]


@dataclass(frozen=True)
class FleetProgress:
    """How far a fleet request's run got: a count per target status."""

    total: int
    counts: dict[str, int]

    @property
    def done(self) -> int:
        return self.counts.get(FleetTarget.Status.DONE, 0)

    @property
    def failed(self) -> int:
        return self.counts.get(FleetTarget.Status.FAILED, 0)

    @property
    def unknown(self) -> int:
        return self.counts.get(FleetTarget.Status.UNKNOWN, 0)

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.unknown


def fleet_targets(account_request: AccountRequest) -> list[FleetTarget]:
    return list(account_request.targets.select_related("instance").order_by("position"))


def runnable_targets(account_request: AccountRequest) -> list[FleetTarget]:
    """The targets a run would take now (waiting or failed), in the confirmed order."""
    return [
        target
        for target in fleet_targets(account_request)
        if target.status in (FleetTarget.Status.WAITING, FleetTarget.Status.FAILED)
    ]


def fleet_progress(targets: list[FleetTarget]) -> FleetProgress:
    return FleetProgress(total=len(targets), counts=dict(Counter(t.status for t in targets)))


def progress_by_request(request_ids: list[int]) -> dict[int, FleetProgress]:
    """The progress of many fleet requests in one query, for the request lists."""
    rows = FleetTarget.objects.filter(request_id__in=request_ids).values_list(
        "request_id", "status"
    )
    statuses: dict[int, list[str]] = {}
    for request_id, status in rows:
        statuses.setdefault(request_id, []).append(status)
    return {
        request_id: FleetProgress(total=len(found), counts=dict(Counter(found)))
        for request_id, found in statuses.items()
    }
