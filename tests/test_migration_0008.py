"""Migration 0008 hides an instance row whose ID a hostile answer wrote outside the
documented shape (issue 23, finding 3: such a row made /instances/ fail for everyone)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("accounts_app", "0007_background_tasks")]
AFTER = [("accounts_app", "0008_admin_changes_in_the_chain")]


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


def test_a_malformed_instance_id_is_hidden_and_the_list_renders_again(
    back_to_the_latest_schema, make_user
):
    old_apps = migrate(BEFORE)
    Instance = old_apps.get_model("accounts_app", "Instance")
    values = {"region_id": "cn-hangzhou", "engine_version": "6.0", "status": "Normal"}
    Instance.objects.create(instance_id="r-evil/../x", synced_at=timezone.now(), **values)
    Instance.objects.create(instance_id="r-fine0001", synced_at=timezone.now(), **values)

    migrate(AFTER)

    from accounts_app.models import Instance as Current

    # Only the columns 0008 knows: later migrations add others (tags).
    stored = Current.objects.only("instance_id", "is_gone")
    assert stored.get(instance_id="r-evil/../x").is_gone
    assert not stored.get(instance_id="r-fine0001").is_gone
    # The page as today's code draws it, on today's schema.
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    client = Client()
    client.force_login(make_user("viewer"))
    assert client.get(reverse("instances")).status_code == 200
