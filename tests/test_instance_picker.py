"""The instance picker's server side: its suggestions, and the form without JavaScript."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts_app.models import AccountRequest
from tests.builders import instance_row, request_form_data
from tests.demo_instances import HEALTHY

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def suggestions(client, text: str, **params) -> str:
    return client.get(reverse("instance_choices"), {"instance_id": text, **params}).content.decode()


def test_suggestions_stop_at_fifty_and_say_there_are_more(requester):
    for number in range(60):
        instance_row(f"r-bp1many{number:04d}")
    answer = suggestions(signed_in(requester), "many")
    assert answer.count('role="option"') == 50
    assert "Only the first 50 matches are shown" in answer


def test_suggestions_match_the_id_the_name_or_the_region(requester):
    instance_row("r-bp1aaaa", name="orders-cache")
    instance_row("r-uf6bbbb", region_id="cn-shanghai")
    client = signed_in(requester)
    assert 'data-value="r-bp1aaaa"' in suggestions(client, "orders")
    assert 'data-value="r-bp1aaaa"' in suggestions(client, "BP1AA")
    by_region = suggestions(client, "shanghai")
    assert 'data-value="r-uf6bbbb"' in by_region
    assert 'data-value="r-bp1aaaa"' not in by_region
    assert "No instance matches." in suggestions(client, "nothing-like-it")


def test_gone_instances_are_suggested_only_to_the_audit_filter(requester):
    instance_row("r-bp1gone", is_gone=True)
    client = signed_in(requester)
    assert "r-bp1gone" not in suggestions(client, "gone")
    assert 'data-value="r-bp1gone"' in suggestions(client, "gone", purpose="filter")


def test_the_form_page_carries_no_instance_list(requester):
    for number in range(60):
        instance_row(f"r-bp1many{number:04d}")
    page = signed_in(requester).get(reverse("request_new")).content.decode()
    assert "r-bp1many" not in page
    assert 'role="combobox"' in page
    assert 'type="text" name="instance_id"' in page


def test_without_javascript_the_typed_id_submits_the_request(estate, requester):
    """What a browser without JavaScript posts: the ID typed into the text input."""
    response = signed_in(requester).post(
        reverse("request_new"), request_form_data(instance_id=f"  {HEALTHY} ")
    )
    assert response.status_code == 302
    assert AccountRequest.objects.get().instance.instance_id == HEALTHY


def test_without_javascript_an_unknown_id_is_refused_at_the_field(estate, requester):
    response = signed_in(requester).post(
        reverse("request_new"), request_form_data(instance_id="r-bp1nosuchthing")
    )
    assert response.status_code == 200
    assert "No instance has this ID" in response.content.decode()
    assert 'value="r-bp1nosuchthing"' in response.content.decode()
    assert not AccountRequest.objects.exists()


def test_a_form_shown_again_keeps_the_instance_and_its_facts_for_the_browser_checks(
    estate, requester
):
    page = signed_in(requester).get(reverse("request_new")).content.decode()
    assert "data-architecture" not in page
    response = signed_in(requester).post(
        reverse("request_new"), request_form_data(account_name="Bad Name")
    )
    page = response.content.decode()
    assert f'value="{HEALTHY}"' in page
    assert 'data-architecture="standard"' in page
