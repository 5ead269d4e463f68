"""sync_instances() and its command, against the simulator over a real socket."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from accounts_app.audit import Origin
from accounts_app.audit.messages import event_text
from accounts_app.models import AuditEvent, Instance
from accounts_app.services.inventory import refresh_instance, sync_instances
from tests.demo_instances import CHANGING, FULL, HEALTHY, OLD_ENGINE, PASSWORD_FREE

pytestmark = pytest.mark.django_db

HANGZHOU, SHANGHAI = "cn-hangzhou", "cn-shanghai"
ORIGIN = Origin.system("test")


@pytest.fixture(autouse=True)
def regions(settings):
    # Listed in this order: the fault tests rely on Hangzhou being asked first.
    settings.KVSTORE_REGIONS = [HANGZHOU, SHANGHAI]


def sync(**kwargs):
    return sync_instances(origin=ORIGIN, **kwargs)


def release(simulator, instance_id: str) -> None:
    """Remove an instance from the simulator, as releasing it on the console would."""
    state = json.loads(simulator.state_path.read_text(encoding="utf-8"))
    del state["instances"][instance_id]
    state["accounts"].pop(instance_id, None)
    simulator.state_path.write_text(json.dumps(state), encoding="utf-8")
    simulator.simulator.store.load()


def snapshot() -> dict[str, dict]:
    """Every row as synced, without the sync time."""
    return {
        row["instance_id"]: row
        for row in Instance.objects.values(
            "instance_id", "name", "region_id", "engine_version", "architecture_type",
            "edition_type", "instance_type", "status", "instance_class", "connection_domain",
            "port", "vpc_auth_mode", "account_count", "is_gone",
        )
    }  # fmt: skip


def test_a_sync_stores_every_instance_of_every_region(kvstore):
    report = sync()

    assert report.ok
    assert (report.created, report.updated, report.unchanged, report.gone) == (10, 0, 0, 0)
    assert Instance.objects.filter(region_id=HANGZHOU).count() == 6
    assert Instance.objects.filter(region_id=SHANGHAI).count() == 4
    healthy = Instance.objects.get(instance_id=HEALTHY)
    assert (healthy.name, healthy.engine_version, healthy.architecture_type) == (
        "orders-cache",
        "5.0",
        "standard",
    )
    assert healthy.connection_domain == f"{HEALTHY}.redis.rds.aliyuncs.com"
    assert healthy.port == 6379
    assert healthy.account_count == 2  # two user accounts; the built-in one is not counted
    assert healthy.vpc_auth_mode == "Open"
    assert not healthy.password_free
    assert Instance.objects.get(instance_id=PASSWORD_FREE).vpc_auth_mode == "Close"
    assert Instance.objects.get(instance_id=PASSWORD_FREE).password_free
    assert Instance.objects.get(instance_id=FULL).account_count == 18
    assert Instance.objects.get(instance_id=CHANGING).status == "Changing"
    # Redis 2.8 has no accounts: not asked, so not known, and still listed.
    assert Instance.objects.get(instance_id=OLD_ENGINE).account_count is None


def test_a_second_sync_changes_nothing(kvstore):
    sync()
    before = snapshot()
    first_sync = Instance.objects.get(instance_id=HEALTHY).synced_at

    report = sync()

    assert report.ok
    assert (report.created, report.updated, report.unchanged, report.gone) == (0, 0, 10, 0)
    assert snapshot() == before
    assert Instance.objects.get(instance_id=HEALTHY).synced_at > first_sync


def test_a_sync_records_what_changed_since_the_last_one(kvstore):
    sync()
    kvstore.add_account(HEALTHY, "new_reader", privilege="RoleReadOnly")
    kvstore.add_instance(InstanceId=CHANGING, RegionId=HANGZHOU, InstanceStatus="Normal")

    report = sync()

    assert (report.created, report.updated, report.unchanged) == (0, 2, 8)
    assert Instance.objects.get(instance_id=HEALTHY).account_count == 3
    assert Instance.objects.get(instance_id=CHANGING).status == "Normal"


def test_a_sync_reads_every_page_of_a_region(kvstore):
    for number in range(60):
        kvstore.add_instance(InstanceId=f"r-uf6bulk{number:04d}", RegionId=SHANGHAI)

    report = sync()

    assert report.ok
    assert Instance.objects.filter(region_id=SHANGHAI).count() == 64
    pages = [
        call["params"].get("PageNumber")
        for call in kvstore.calls("DescribeInstances")
        if call["params"].get("RegionId") == SHANGHAI
    ]
    assert pages == ["1", "2"]


def test_a_region_that_fails_keeps_its_rows_and_is_reported(kvstore):
    sync()
    before = snapshot()
    release(kvstore, HEALTHY)
    kvstore.add_account(PASSWORD_FREE, "flags_rw")
    # One failure, no retry: Hangzhou is asked first and fails, Shanghai answers.
    kvstore.add_fault("http503", action="DescribeInstances", count=1)

    report = sync(client=kvstore.client(max_attempts=1))

    assert list(report.failures) == [HANGZHOU]
    assert "ServiceUnavailable" in report.failures[HANGZHOU]
    assert report.failed_regions == [HANGZHOU]
    after = snapshot()
    hangzhou = {key: row for key, row in after.items() if row["region_id"] == HANGZHOU}
    assert hangzhou == {key: row for key, row in before.items() if row["region_id"] == HANGZHOU}
    assert not after[HEALTHY]["is_gone"]  # its region did not answer: nothing is known
    assert after[PASSWORD_FREE]["account_count"] == before[PASSWORD_FREE]["account_count"] + 1


def test_an_instance_that_fails_keeps_its_row_and_is_reported(kvstore):
    sync()
    kvstore.add_account(HEALTHY, "new_reader")
    kvstore.add_account(PASSWORD_FREE, "flags_rw")
    kvstore.add_fault("http503", action="DescribeAccounts", instance_id=HEALTHY, count=1)

    report = sync(client=kvstore.client(max_attempts=1))

    assert list(report.failures) == [HEALTHY]
    assert report.failed_regions == []
    healthy = Instance.objects.get(instance_id=HEALTHY)
    assert healthy.account_count == 2
    assert not healthy.is_gone
    assert Instance.objects.get(instance_id=PASSWORD_FREE).account_count == 2


def test_a_new_instance_that_cannot_be_described_is_not_listed_half_known(kvstore):
    kvstore.add_instance(InstanceId="r-bp1fresh0000001", RegionId=HANGZHOU)
    kvstore.add_fault(
        "http503", action="DescribeInstanceAttribute", instance_id="r-bp1fresh0000001", count=1
    )

    report = sync(client=kvstore.client(max_attempts=1))

    assert list(report.failures) == ["r-bp1fresh0000001"]
    assert not Instance.objects.filter(instance_id="r-bp1fresh0000001").exists()
    assert Instance.objects.count() == 10


def test_a_vanished_instance_is_marked_gone_not_deleted(kvstore):
    sync()
    release(kvstore, HEALTHY)

    report = sync()

    assert report.gone == 1
    healthy = Instance.objects.get(instance_id=HEALTHY)
    assert healthy.is_gone
    assert healthy.name == "orders-cache"
    assert Instance.objects.filter(is_gone=True).count() == 1
    # A second sync does not count it again.
    assert sync().gone == 0


def test_an_instance_that_comes_back_is_no_longer_gone(kvstore):
    sync()
    release(kvstore, HEALTHY)
    sync()
    kvstore.add_instance(InstanceId=HEALTHY, RegionId=HANGZHOU, InstanceName="orders-cache")

    report = sync()

    assert report.updated == 1
    assert not Instance.objects.get(instance_id=HEALTHY).is_gone


def test_each_sync_writes_one_audit_event(kvstore):
    sync_instances(origin=Origin.system("cron"))
    kvstore.add_fault("http503", action="DescribeInstances", count=1)
    sync_instances(origin=Origin.system("cron"), client=kvstore.client(max_attempts=1))

    failed, succeeded = AuditEvent.objects.filter(action=AuditEvent.Action.INSTANCES_SYNCED)
    assert AuditEvent.objects.count() == 2
    assert succeeded.outcome == AuditEvent.Outcome.SUCCESS
    assert succeeded.actor_name == "cron"
    assert "10 instances" in event_text(succeeded)
    assert "10 new" in event_text(succeeded)
    assert failed.outcome == AuditEvent.Outcome.FAILURE
    assert HANGZHOU in event_text(failed)
    assert "ServiceUnavailable" in event_text(failed)


def test_refresh_instance_writes_the_live_count(kvstore):
    sync()
    instance = Instance.objects.get(instance_id=HEALTHY)
    kvstore.add_account(HEALTHY, "new_reader")

    details = refresh_instance(instance)

    assert len(details.accounts) == 4  # the built-in account is listed...
    assert instance.account_count == 3  # ...but not counted
    assert Instance.objects.get(instance_id=HEALTHY).account_count == 3


def test_the_command_prints_the_report(kvstore, capsys):
    call_command("sync_instances")

    out = capsys.readouterr().out
    assert "Synced 10 instances in 2 regions: 10 new" in out
    assert AuditEvent.objects.get().actor_name == "sync_instances"


def test_the_command_syncs_only_the_regions_given(kvstore, capsys):
    call_command("sync_instances", "--region", SHANGHAI)

    assert set(Instance.objects.values_list("region_id", flat=True)) == {SHANGHAI}


def test_the_command_fails_when_a_region_fails(kvstore, settings, capsys):
    settings.KVSTORE_MAX_ATTEMPTS = 1
    kvstore.add_fault("http503", action="DescribeInstances", count=1)

    with pytest.raises(CommandError, match=HANGZHOU):
        call_command("sync_instances")

    assert f"FAILED {HANGZHOU}" in capsys.readouterr().err
    assert Instance.objects.filter(region_id=SHANGHAI).count() == 4


def test_redis_2_8_is_listed_without_asking_for_its_accounts(kvstore):
    kvstore.clear_calls()

    sync()

    asked = {call["instance_id"] for call in kvstore.calls("DescribeAccounts")}
    assert OLD_ENGINE not in asked
    assert HEALTHY in asked
    old = Instance.objects.get(instance_id=OLD_ENGINE)
    assert not old.is_gone
    assert old.account_count is None


def test_the_edition_comes_from_the_listing_and_survives_a_live_refresh(kvstore):
    sync()
    tair = Instance.objects.get(instance_id="r-uf6ana6c8j4xl1t6wd")
    assert tair.edition_type == "Enterprise"

    refresh_instance(tair)  # DescribeInstanceAttribute has no EditionType

    assert Instance.objects.get(instance_id="r-uf6ana6c8j4xl1t6wd").edition_type == "Enterprise"


def test_an_instance_listed_but_without_attribute_is_gone_not_a_failure(kvstore):
    sync()
    kvstore.add_instance(InstanceId="r-bp1halfgone000000", RegionId=HANGZHOU)
    sync()
    # Released between DescribeInstances and DescribeInstanceAttribute.
    original = kvstore.simulator._describe_instances

    def listing_still_has_it(params):
        answer = original(params)
        kvstore.simulator.store._data["instances"].pop("r-bp1halfgone000000", None)
        return answer

    kvstore.simulator._describe_instances = listing_still_has_it
    report = sync(client=kvstore.client())

    assert report.failures == {}
    assert Instance.objects.get(instance_id="r-bp1halfgone000000").is_gone
