"""The instance inventory: what DescribeInstances says exists, kept in the Instance table.

`sync_instances()` lists every configured region (all pages; EditionType is only
there), then asks each instance for its attribute (VpcAuthMode is only there) and its
accounts (the user-created ones are what CreateAccount's limit of 18 counts; an engine
older than 4.0 has no accounts, so DescribeAccounts is not called for it). What answered
is written in one transaction with its audit event; what failed is reported and its rows
are left as they were, so a partial outage never makes the list lie in either direction.
An instance whose DescribeInstanceAttribute lists nothing no longer exists: it is marked
gone.

The API facts: docs/alibaba-api.md (DescribeInstances, DescribeInstanceAttribute,
DescribeAccounts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts_app.alibaba import errors
from accounts_app.alibaba.client import (
    Account,
    InstanceAttribute,
    InstanceSummary,
    KVStoreClient,
    get_client,
)
from accounts_app.alibaba.errors import AlibabaApiError, InstanceNotFound
from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import AuditMessage, message
from accounts_app.models import AuditEvent, Instance
from accounts_app.services import answers
from accounts_app.services.breaker import get_guarded_client

# Instance fields a sync writes, besides instance_id. Also the fields compared to
# decide whether a row changed.
SYNCED_FIELDS = (
    "name",
    "tags",
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
)


# Account management needs Redis 4.0 or later; DescribeAccounts is not called below it.
MIN_ACCOUNTS_ENGINE = (4, 0)


def supports_accounts(engine_version: str) -> bool:
    try:
        version = tuple(int(part) for part in engine_version.split("."))
    except ValueError:
        return True  # an unknown spelling: ask, and let the API say
    return version >= MIN_ACCOUNTS_ENGINE


@dataclass(frozen=True)
class InstanceDetails:
    """One instance as its own Describe* calls describe it, now.

    ``accounts`` is None for an engine without accounts (DescribeAccounts not called);
    ``edition_type`` comes from DescribeInstances, None when that was not called (the
    row keeps what the last sync wrote).
    """

    attribute: InstanceAttribute
    accounts: list[Account] | None
    edition_type: str | None = None
    # From DescribeInstances too (DescribeInstanceAttribute has none): None when it was
    # not called, and the row keeps the tags the last sync wrote.
    tags: dict[str, str] | None = None

    @property
    def normal_accounts(self) -> list[Account] | None:
        """The accounts a user created: what the limit of 18 counts."""
        if self.accounts is None:
            return None
        return [account for account in self.accounts if account.account_type != "Super"]

    @property
    def accounts_being_created(self) -> list[Account]:
        return [a for a in self.accounts or [] if a.account_status == "Unavailable"]

    def field_values(self) -> dict[str, object]:
        attribute = self.attribute
        normal = self.normal_accounts
        values: dict[str, object] = {
            "name": attribute.instance_name,
            "region_id": attribute.region_id,
            "engine_version": attribute.engine_version,
            "architecture_type": attribute.architecture_type,
            "instance_type": attribute.instance_type,
            "status": attribute.instance_status,
            "instance_class": attribute.instance_class,
            "connection_domain": attribute.connection_domain,
            "port": attribute.port,
            "vpc_auth_mode": attribute.vpc_auth_mode,
            "account_count": None if normal is None else len(normal),
        }
        if self.edition_type is not None:
            values["edition_type"] = self.edition_type
        if self.tags is not None:
            values["tags"] = self.tags
        return values


@dataclass
class SyncReport:
    regions: list[str]
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    gone: int = 0
    # Region ID or instance ID -> what went wrong (the client's error text, which never
    # holds a secret).
    failures: dict[str, str] = field(default_factory=dict)
    synced_at: datetime | None = None

    @property
    def seen(self) -> int:
        return self.created + self.updated + self.unchanged

    @property
    def failed_regions(self) -> list[str]:
        return [region for region in self.regions if region in self.failures]

    @property
    def ok(self) -> bool:
        return not self.failures

    def audit_message(self) -> AuditMessage:
        """The sync's summary for the audit log, said in each reader's language."""
        counts = {
            "seen": self.seen,
            "regions_ok": len(self.regions) - len(self.failed_regions),
            "regions": len(self.regions),
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "gone": self.gone,
        }
        if not self.failures:
            return message("sync.summary", **counts)
        # The failures are the client's error texts: codes and API values, not sentences.
        failed = "; ".join(f"{key}: {reason}" for key, reason in self.failures.items())
        return message(
            "sync.summary_failed", **counts, failed=len(self.failures), failures=failed[:3000]
        )


# A resource has at most 20 tags, keys and values of at most 128 characters (Alibaba's
# tag limits): more is a hostile answer, cut to what a real one can hold.
MAX_TAGS, MAX_TAG_LENGTH = 20, 128


def kept_tags(tags: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return {
        key[:MAX_TAG_LENGTH].replace("\x00", ""): value[:MAX_TAG_LENGTH].replace("\x00", "")
        for key, value in tags[:MAX_TAGS]
    }


def fetch_details(
    instance_id: str,
    region_id: str,
    client: KVStoreClient,
    *,
    edition_type: str | None = None,
    tags: dict[str, str] | None = None,
) -> InstanceDetails:
    """DescribeInstanceAttribute, then DescribeAccounts if the engine has accounts.

    Raises AlibabaApiError; InstanceNotFound when the instance no longer exists.
    """
    attribute = client.describe_instance_attribute(region_id=region_id, instance_id=instance_id)
    accounts = None
    if supports_accounts(attribute.engine_version):
        accounts = client.describe_accounts(region_id=region_id, instance_id=instance_id)
    details = InstanceDetails(
        attribute=attribute, accounts=accounts, edition_type=edition_type, tags=tags
    )
    problem = answers.instance_problem(attribute.instance_id, details.field_values())
    if problem is not None:
        # Refused whole: a row half written from a hostile answer would lie.
        raise AlibabaApiError(
            errors.MALFORMED_RESPONSE, problem, action="DescribeInstanceAttribute"
        )
    return details


def refresh_instance(instance: Instance, *, client: KVStoreClient | None = None) -> InstanceDetails:
    """Ask the API about one instance now and write to its row what changed.

    Raises AlibabaApiError when the API does not answer; the row is then untouched. An
    instance the API says does not exist is marked gone, then InstanceNotFound is raised.
    Writes only when something differs: pre-flight calls this on every keystroke.
    """
    try:
        details = fetch_details(
            instance.instance_id, instance.region_id, client or get_guarded_client()
        )
    except InstanceNotFound:
        if not instance.is_gone:
            now = timezone.now()
            Instance.objects.filter(pk=instance.pk).update(is_gone=True, synced_at=now)
            instance.is_gone, instance.synced_at = True, now
        raise
    changed = {
        name: value
        for name, value in details.field_values().items()
        if getattr(instance, name) != value
    }
    if changed:
        changed["synced_at"] = timezone.now()
        Instance.objects.filter(pk=instance.pk).update(**changed)
        for name, value in changed.items():
            setattr(instance, name, value)
    return details


def sync_instances(
    *,
    origin: Origin,
    regions: Sequence[str] | None = None,
    client: KVStoreClient | None = None,
) -> SyncReport:
    """Bring the Instance table in line with the API; idempotent, one audit event."""
    client = client or get_client()
    report = SyncReport(regions=list(regions or settings.KVSTORE_REGIONS))
    listed: dict[str, list[InstanceSummary]] = {}
    for region_id in report.regions:
        try:
            listed[region_id] = client.describe_instances(region_id=region_id)
        except AlibabaApiError as error:
            report.failures[region_id] = str(error)
    details = _fetch_all(
        [summary for summaries in listed.values() for summary in summaries], client, report
    )
    _write(report, answered_regions=listed.keys(), details=details, origin=origin)
    return report


def _fetch_all(
    summaries: list[InstanceSummary], client: KVStoreClient, report: SyncReport
) -> list[InstanceDetails]:
    """Details of every listed instance; an instance that fails goes to report.failures."""

    def fetch(summary: InstanceSummary) -> InstanceDetails | AlibabaApiError:
        problem = answers.instance_problem(summary.instance_id, {})
        if problem is not None:
            return AlibabaApiError(errors.MALFORMED_RESPONSE, problem, action="DescribeInstances")
        try:
            return fetch_details(
                summary.instance_id,
                summary.region_id,
                client,
                edition_type=summary.edition_type,
                tags=kept_tags(summary.tags),
            )
        except AlibabaApiError as error:
            return error

    results = _map(fetch, summaries, settings.KVSTORE_SYNC_WORKERS)
    fetched = []
    for summary, result in zip(summaries, results, strict=True):
        if isinstance(result, InstanceNotFound):
            # Released between the listing and its own call: not listed, so _write()
            # marks it gone; not a failure.
            continue
        if isinstance(result, AlibabaApiError):
            # Skipped and reported: one bad instance does not fail the batch.
            report.failures[answers.error_code(summary.instance_id)[:64]] = str(result)
        else:
            fetched.append(result)
    return fetched


def _map(function: Callable, items: list, workers: int) -> list:
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kvstore-sync") as pool:
        return list(pool.map(function, items))


def _write(
    report: SyncReport,
    *,
    answered_regions: Iterable[str],
    details: list[InstanceDetails],
    origin: Origin,
) -> None:
    now = timezone.now()
    report.synced_at = now
    answered = set(answered_regions)
    # Instances whose region answered but whose own calls failed: still there, but
    # their rows are not rewritten from half an answer (and never marked gone).
    failed_ids = set(report.failures)
    with transaction.atomic():
        # 5,000 rows of a few columns: one read is cheaper than a query per region.
        existing = Instance.objects.in_bulk(field_name="instance_id")
        rows = []
        for item in details:
            values = item.field_values()
            previous = existing.get(item.attribute.instance_id)
            if previous is None:
                report.created += 1
            elif previous.is_gone or any(getattr(previous, k) != v for k, v in values.items()):
                report.updated += 1
            else:
                report.unchanged += 1
            rows.append(
                Instance(
                    instance_id=item.attribute.instance_id, is_gone=False, synced_at=now, **values
                )
            )
        # An upsert: a concurrent sync inserting the same instance is not an error.
        Instance.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["instance_id"],
            update_fields=[*SYNCED_FIELDS, "is_gone", "synced_at"],
        )
        seen = {item.attribute.instance_id for item in details} | failed_ids
        vanished = [
            row.pk
            for row in existing.values()
            if row.region_id in answered and not row.is_gone and row.instance_id not in seen
        ]
        # Marked, never deleted: requests refer to their instance.
        report.gone = Instance.objects.filter(pk__in=vanished).update(is_gone=True, synced_at=now)
        record_event(
            action=AuditEvent.Action.INSTANCES_SYNCED,
            outcome=AuditEvent.Outcome.FAILURE if report.failures else AuditEvent.Outcome.SUCCESS,
            origin=origin,
            region_id=report.regions[0] if len(report.regions) == 1 else "",
            message=report.audit_message(),
        )
