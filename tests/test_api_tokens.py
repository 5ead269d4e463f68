"""Personal API tokens: the preferences page, the command, staff revoking anyone's."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts_app.models import ApiToken
from accounts_app.services import tokens
from tests.api_support import ApiClient

pytestmark = pytest.mark.django_db


def test_a_token_created_on_the_preferences_page_is_shown_once_and_stored_as_a_digest(
    client, requester
):
    client.force_login(requester)
    page = client.post(
        "/preferences/tokens/",
        {"name": "jira", "scopes": ["read", "request"], "expires_in_days": "30"},
    )
    secret = re.search(r'id="new-token">([^<]+)<', page.content.decode()).group(1)
    token = ApiToken.objects.get()
    assert (token.name, token.scope_list) == ("jira", ["read", "request"])
    assert token.digest == tokens.digest_of(secret) and secret not in str(vars(token))
    assert secret.startswith(token.prefix)
    listed = client.get("/preferences/tokens/").content.decode()
    assert token.prefix in listed and secret not in listed
    assert ApiClient(secret).get("/instances").status_code == 200


def test_the_owner_revokes_a_token_and_it_stops_working(client, requester):
    secret = tokens.token_create(user=requester, name="x", scopes="read", expires_in_days=1).secret
    client.force_login(requester)
    client.post(f"/preferences/tokens/{ApiToken.objects.get().pk}/revoke/")
    assert ApiClient(secret).get("/instances").status_code == 401


def test_nobody_revokes_someone_elses_token_from_the_page(client, requester, other_requester):
    secret = tokens.token_create(user=requester, name="x", scopes="read", expires_in_days=1).secret
    client.force_login(other_requester)
    client.post(f"/preferences/tokens/{ApiToken.objects.get().pk}/revoke/")
    assert ApiClient(secret).get("/instances").status_code == 200


def test_staff_revoke_anyones_token_in_the_admin(client, requester, make_user):
    secret = tokens.token_create(user=requester, name="x", scopes="read", expires_in_days=1).secret
    client.force_login(make_user("root", superuser=True))
    client.post(
        "/admin/accounts_app/apitoken/",
        {"action": "revoke", "_selected_action": [ApiToken.objects.get().pk]},
    )
    assert ApiClient(secret).get("/instances").status_code == 401


def test_the_command_prints_the_token_once(requester):
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "create_api_token",
        requester.username,
        "--scopes",
        "read,request",
        "--expires-in-days",
        "90",
        "--name",
        "servicenow",
        stdout=out,
        stderr=err,
    )
    secret = out.getvalue().strip()
    token = ApiToken.objects.get(name="servicenow")
    assert token.scope_list == ["read", "request"] and token.digest == tokens.digest_of(secret)
    assert ApiClient(secret).get("/requests").status_code == 200


def test_the_command_refuses_unknown_scopes(requester):
    with pytest.raises(CommandError, match="Unknown scopes: admin"):
        call_command("create_api_token", requester.username, "--scopes", "read,admin")
    assert not ApiToken.objects.exists()
