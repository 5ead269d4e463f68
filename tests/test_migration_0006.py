"""Rows stored before the API model was corrected read right after the upgrade."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("accounts_app", "0005_request_finished_index")]
AFTER = [("accounts_app", "0006_instance_auth_mode_account_count")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def back_to_the_latest_schema():
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_stored_auth_modes_keep_the_apis_word_and_counts_become_unknown(back_to_the_latest_schema):
    old_apps = migrate(BEFORE)
    OldInstance = old_apps.get_model("accounts_app", "Instance")
    for instance_id, mode in (("r-bp1stored0000000a", "Open"), ("r-bp1stored0000000b", "Close")):
        OldInstance.objects.create(
            instance_id=instance_id,
            region_id="cn-hangzhou",
            engine_version="6.0",
            architecture_type="standard",
            status="Normal",
            vpc_auth_mode=mode,
            account_count=3,  # counted the built-in accounts too
            synced_at=timezone.now(),
        )

    migrate(AFTER)

    from accounts_app.models import Instance

    # Only the columns 0006 knows: later migrations add others (tags).
    stored = Instance.objects.only("instance_id", "vpc_auth_mode", "account_count")
    required = stored.get(instance_id="r-bp1stored0000000a")
    password_free = stored.get(instance_id="r-bp1stored0000000b")
    assert (required.vpc_auth_mode, required.password_free) == ("Open", False)
    assert (password_free.vpc_auth_mode, password_free.password_free) == ("Close", True)
    assert required.account_count is None
    assert password_free.account_count is None
