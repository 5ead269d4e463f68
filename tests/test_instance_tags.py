"""Instance tags end to end: the simulator lists them as DescribeInstances does
(Tags.Tag[].Key/Value), the sync keeps them, the list shows them, and one selector
(instances_matching) finds instances by `key:value` or a value, for the list and the
picker alike. And the bigger demo estate (seed_demo --instances N) that makes them worth
searching."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts_app.models import Instance
from accounts_app.selectors.instances import instances_matching
from accounts_app.simulator.demo_estate import BIG_ESTATE_REGIONS
from tests.builders import instance_row
from tests.demo_instances import HEALTHY, TAIR

pytestmark = pytest.mark.django_db


def test_the_simulator_lists_tags_as_the_api_does(kvstore_client):
    (orders,) = [
        item
        for item in kvstore_client.describe_instances(region_id="cn-hangzhou")
        if item.instance_id == HEALTHY
    ]
    assert dict(orders.tags) == {"env": "prod", "team": "orders", "app": "orders-cache"}


def test_the_sync_keeps_each_instances_tags(estate):
    assert Instance.objects.get(instance_id=HEALTHY).tags == {
        "env": "prod",
        "team": "orders",
        "app": "orders-cache",
    }
    assert Instance.objects.get(instance_id=TAIR).tags["app"] == "analytics"


def test_key_value_finds_the_instances_with_that_tag_and_no_other():
    instance_row("r-bp1prod0001", tags={"env": "prod", "team": "orders"})
    instance_row("r-bp1stag0001", tags={"env": "staging", "team": "orders"})
    instance_row("r-bp1none0001")

    found = set(instances_matching("env:prod").values_list("instance_id", flat=True))
    assert found == {"r-bp1prod0001"}
    assert set(instances_matching(" TEAM:Orders ").values_list("instance_id", flat=True)) == set()
    assert set(instances_matching("team:ORDERS").values_list("instance_id", flat=True)) == {
        "r-bp1prod0001",
        "r-bp1stag0001",
    }


def test_a_value_alone_finds_the_tagged_instances_as_well_as_ids_and_names():
    instance_row("r-bp1tagged001", tags={"team": "payments"})
    instance_row("r-bp1named001", name="payments-cache")
    instance_row("r-bp1other001", name="orders-cache", tags={"team": "orders"})

    found = set(instances_matching("payments").values_list("instance_id", flat=True))
    assert found == {"r-bp1tagged001", "r-bp1named001"}


def found_by(text: str) -> set[str]:
    return set(instances_matching(text).values_list("instance_id", flat=True))


def test_a_tag_key_alone_finds_no_instance_by_that_key():
    # The JSON text of every tagged instance holds its keys: "env" found them all.
    instance_row("r-bp1prod0001", tags={"env": "prod", "team": "orders"})
    instance_row("r-bp1stag0001", tags={"env": "staging", "team": "billing"})

    assert found_by("env") == set()
    assert found_by("team") == set()


def test_a_word_matches_inside_one_tag_value_never_across_the_json():
    instance_row("r-bp1prod0001", tags={"env": "prod", "team": "orders"})
    instance_row("r-bp1stag0001", tags={"env": "staging", "team": "billing"})

    assert found_by("STAG") == {"r-bp1stag0001"}
    assert found_by("ill") == {"r-bp1stag0001"}
    # Quotes, colons and commas are the JSON's, and values are not joined.
    for text in ('"', '": "', ",", "prod, ", "prodorders", "{"):
        assert found_by(text) == set(), text


def test_a_key_and_a_colon_find_the_instances_that_have_that_tag():
    instance_row("r-bp1prod0001", tags={"env": "prod"})
    instance_row("r-bp1team0001", tags={"team": "orders"})
    instance_row("r-bp1none0001", name="env-less")

    assert found_by("env:") == {"r-bp1prod0001"}
    assert found_by("team:") == {"r-bp1team0001"}


def test_the_list_shows_tags_and_searches_them(requester):
    instance_row("r-bp1prod0001", name="orders-cache", tags={"env": "prod"})
    instance_row("r-bp1stag0001", name="orders-staging", tags={"env": "staging"})
    client = Client()
    client.force_login(requester)

    html = client.get(reverse("instances"), {"q": "env:staging"}).content.decode()

    assert "r-bp1stag0001" in html and "r-bp1prod0001" not in html
    assert '<span class="tag">env:staging</span>' in html


def test_the_picker_matches_tags_too(requester):
    instance_row("r-bp1prod0001", tags={"env": "prod"})
    instance_row("r-bp1stag0001", tags={"env": "staging"})
    client = Client()
    client.force_login(requester)

    answer = client.get(reverse("instance_choices"), {"instance_id": "env:prod"}).content.decode()

    assert 'data-value="r-bp1prod0001"' in answer
    assert 'data-value="r-bp1stag0001"' not in answer


def test_seed_demo_writes_a_bigger_estate_across_regions(tmp_path, settings):
    settings.DEMO_PASSWORD = "Demo-Passw0rd"
    state_path = tmp_path / "state.json"

    call_command("seed_demo", instances=300, state=state_path)

    instances = json.loads(state_path.read_text())["instances"].values()
    assert len(instances) == 300
    assert {item["RegionId"] for item in instances} == set(BIG_ESTATE_REGIONS)
    tags = [{t["Key"]: t["Value"] for t in item["Tags"]["Tag"]} for item in instances]
    assert all({"env", "team", "app"} <= set(tag) for tag in tags)
    assert len({tag["team"] for tag in tags}) >= 8
