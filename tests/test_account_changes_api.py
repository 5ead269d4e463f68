"""DeleteAccount, GrantAccountPrivilege, ResetAccountPassword and ModifyAccountDescription:
the client against the simulator over a loopback socket, and Alibaba's own SDK against the
same simulator (section 7 of the API reference; each operation's page for its codes).

Every change leaves the account ``Unavailable`` for a while; a change whose outcome is
unclear is never sent twice.
"""

from __future__ import annotations

import hashlib

import pytest
import requests
from alibabacloud_r_kvstore20150101 import models as v3_models
from alibabacloud_r_kvstore20150101.client import Client as V3Client
from alibabacloud_tea_openapi import models as openapi_models
from alibabacloud_tea_openapi.exceptions import ClientException

from accounts_app.alibaba import errors
from accounts_app.alibaba.errors import AlibabaApiError, OutcomeUnknown
from tests.demo_instances import CHANGING, HEALTHY, OLD_ENGINE

HZ = "cn-hangzhou"
PASSWORD = "Canary-Reset-93"
NAME = "etl_job"

CHANGES = {
    "DeleteAccount": ("delete_account", {}),
    "GrantAccountPrivilege": ("grant_account_privilege", {"account_privilege": "RoleReadOnly"}),
    "ResetAccountPassword": ("reset_account_password", {"account_password": PASSWORD}),
    "ModifyAccountDescription": (
        "modify_account_description",
        {"account_description": "nightly-etl"},
    ),
}


def change(client, action, *, account_name=NAME, instance_id=HEALTHY, **overrides):
    method, extra = CHANGES[action]
    options = {"region_id": HZ, "instance_id": instance_id, "account_name": account_name}
    return getattr(client, method)(**{**options, **extra, **overrides})


def listed(client, name=NAME, instance_id=HEALTHY):
    return client.describe_accounts(region_id=HZ, instance_id=instance_id, account_name=name)


@pytest.fixture
def outside_account(simulator):
    """An account made on the simulator's control API, as the console or a script would."""
    response = requests.post(
        f"{simulator.endpoint}/_simulator/accounts",
        json={
            "InstanceId": HEALTHY,
            "AccountName": NAME,
            "AccountPrivilege": "RoleReadWrite",
            "AccountDescription": "made-by-hand",
        },
        timeout=5,
    )
    assert response.status_code == 201, response.text
    simulator.set_activation_delay(60)
    return NAME


# --- Each operation does what it says, and the account is Unavailable meanwhile ----------------


def test_an_account_made_outside_the_dashboard_is_listed(kvstore_client, outside_account):
    [account] = listed(kvstore_client)
    assert (account.privilege, account.account_description) == ("RoleReadWrite", "made-by-hand")
    assert (account.account_status, account.account_type) == ("Available", "Normal")


def test_delete_account_keeps_it_listed_as_unavailable_then_it_is_gone(
    simulator, kvstore_client, outside_account
):
    result = change(kvstore_client, "DeleteAccount")

    assert result.request_id
    [account] = listed(kvstore_client)
    assert account.account_status == "Unavailable"
    simulator.clock.advance(61)
    assert listed(kvstore_client) == []
    with pytest.raises(AlibabaApiError) as caught:
        change(kvstore_client, "DeleteAccount")
    assert (caught.value.code, caught.value.http_status) == ("InvalidAccountName.NotFound", 404)


def test_grant_account_privilege_downgrades_after_a_while(
    simulator, kvstore_client, outside_account
):
    change(kvstore_client, "GrantAccountPrivilege")

    [account] = listed(kvstore_client)
    assert (account.privilege, account.account_status) == ("RoleReadOnly", "Unavailable")
    simulator.clock.advance(61)
    assert listed(kvstore_client)[0].account_status == "Available"


def test_modify_account_description(simulator, kvstore_client, outside_account):
    change(kvstore_client, "ModifyAccountDescription")

    [account] = listed(kvstore_client)
    assert (account.account_description, account.account_status) == ("nightly-etl", "Unavailable")


def test_reset_account_password_sends_the_password_only_in_the_body_and_keeps_it_nowhere(
    simulator, kvstore_client, outside_account
):
    change(kvstore_client, "ResetAccountPassword")

    [call] = simulator.calls("ResetAccountPassword")
    assert call["method"] == "POST"
    assert call["query_keys"] == []
    assert "AccountPassword" in call["body_keys"]
    assert call["params"]["AccountPasswordSha256"] == hashlib.sha256(PASSWORD.encode()).hexdigest()
    assert PASSWORD not in simulator.state_path.read_text()
    assert listed(kvstore_client)[0].account_status == "Unavailable"


# --- Refusals, with Alibaba's codes ---------------------------------------------------------------


def refusal(client, action, **options):
    with pytest.raises(AlibabaApiError) as caught:
        change(client, action, **options)
    return caught.value.code, caught.value.http_status


@pytest.mark.parametrize("action", list(CHANGES))
def test_a_built_in_account_is_never_changed(simulator, kvstore_client, action):
    assert refusal(kvstore_client, action, account_name=HEALTHY) == ("IncorrectAccount", 400)
    [account] = listed(kvstore_client, HEALTHY)
    assert (account.account_type, account.account_status) == ("Super", "Available")


@pytest.mark.parametrize("action", list(CHANGES))
def test_an_account_that_does_not_exist_is_not_found(kvstore_client, action):
    assert refusal(kvstore_client, action, account_name="nobody_here") == (
        "InvalidAccountName.NotFound",
        404,
    )
    assert refusal(kvstore_client, action, account_name="Bad-Name") == (
        "InvalidAccountName.Format",
        400,
    )


@pytest.mark.parametrize(
    ("action", "code"),
    [
        ("DeleteAccount", "OperationDenied.AccountStatus"),
        ("GrantAccountPrivilege", "OperationDenied.AccountStatus"),
        ("ResetAccountPassword", "TaskExists"),
        ("ModifyAccountDescription", "OperationDenied.AccountStatus"),
    ],
)
def test_an_account_still_changing_refuses_the_next_change(
    simulator, kvstore_client, outside_account, action, code
):
    change(kvstore_client, "ModifyAccountDescription")

    assert refusal(kvstore_client, action)[0] == code
    # Another account of the same instance waits too: the instance is busy.
    assert refusal(kvstore_client, action, account_name="reporting_ro") == (
        "IncorrectDBInstanceState",
        403,
    )
    simulator.clock.advance(61)
    change(kvstore_client, action)


def test_grant_takes_only_read_only_or_read_write(kvstore_client, outside_account):
    code = refusal(kvstore_client, "GrantAccountPrivilege", account_privilege="RoleRepl")
    assert code == ("InvalidAccountPrivilege.Format", 400)
    assert listed(kvstore_client)[0].privilege == "RoleReadWrite"


def test_reset_checks_the_password_rules(kvstore_client, outside_account):
    code = refusal(kvstore_client, "ResetAccountPassword", account_password="short")
    assert code == ("InvalidAccountPassword.Format", 400)


def test_a_description_keeps_the_creation_rules(kvstore_client, outside_account):
    code = refusal(
        kvstore_client, "ModifyAccountDescription", account_description="https://x.example"
    )
    assert code == ("InvalidAccountDescription.Format", 400)
    assert listed(kvstore_client)[0].account_description == "made-by-hand"


@pytest.mark.parametrize(
    ("instance_id", "code"),
    [
        (OLD_ENGINE, "InvalidEngineVersion.Format"),
        (CHANGING, "IncorrectDBInstanceState"),
        ("r-bp1nothere00000000", "InvalidInstanceId.NotFound"),
    ],
)
def test_the_instance_must_support_accounts_and_be_running(kvstore_client, instance_id, code):
    assert refusal(kvstore_client, "DeleteAccount", instance_id=instance_id)[0] == code


def test_every_new_code_has_a_human_message():
    for code in ("IncorrectAccount", "InvalidAccountPrivilege.Format", "TaskExists"):
        assert AlibabaApiError(code, "x").human_message is errors.HUMAN_MESSAGES[code]


# --- Retries: throttling is retried, an unclear outcome never is ---------------------------


@pytest.mark.parametrize("action", list(CHANGES))
def test_throttling_is_retried(simulator, kvstore_client, outside_account, action):
    simulator.add_fault("throttle", action=action)

    change(kvstore_client, action)

    assert len(simulator.calls(action)) == 2


@pytest.mark.parametrize("action", list(CHANGES))
def test_a_change_whose_outcome_is_unclear_is_never_sent_twice(simulator, outside_account, action):
    client = simulator.client(deadline=0.3)
    simulator.add_fault("commit_then_timeout", action=action, delay=5.0)

    with pytest.raises(OutcomeUnknown):
        change(client, action)

    assert len(simulator.calls(action)) == 1
    assert simulator.sleeps == []
    # The change was made: DescribeAccounts, not a second call, tells.
    assert listed(client)[0].account_status == "Unavailable"


# --- Alibaba's own SDK agrees with the simulator ------------------------------------------


@pytest.fixture
def v3_sdk(simulator, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    config = openapi_models.Config(
        access_key_id=simulator.access_key_id,
        access_key_secret=simulator.access_key_secret,
        endpoint=f"{simulator.host}:{simulator.port}",
        protocol="http",
        region_id=HZ,
    )
    return V3Client(config)


def test_the_official_sdk_makes_each_change(simulator, v3_sdk, outside_account):
    simulator.set_activation_delay(0)
    v3_sdk.grant_account_privilege(
        v3_models.GrantAccountPrivilegeRequest(
            instance_id=HEALTHY, account_name=NAME, account_privilege="RoleReadOnly"
        )
    )
    v3_sdk.modify_account_description(
        v3_models.ModifyAccountDescriptionRequest(
            instance_id=HEALTHY, account_name=NAME, account_description="sdk-made"
        )
    )
    v3_sdk.reset_account_password(
        v3_models.ResetAccountPasswordRequest(
            instance_id=HEALTHY, account_name=NAME, account_password=PASSWORD
        )
    )
    [account] = [a for a in simulator.accounts(HEALTHY) if a["AccountName"] == NAME]
    privilege = account["DatabasePrivileges"]["DatabasePrivilege"][0]["AccountPrivilege"]
    assert (privilege, account["AccountDescription"]) == ("RoleReadOnly", "sdk-made")

    response = v3_sdk.delete_account(
        v3_models.DeleteAccountRequest(instance_id=HEALTHY, account_name=NAME)
    )
    assert response.body.request_id
    assert NAME not in simulator.account_names(HEALTHY)
    with pytest.raises(ClientException) as caught:
        v3_sdk.delete_account(
            v3_models.DeleteAccountRequest(instance_id=HEALTHY, account_name=NAME)
        )
    assert caught.value.code == "InvalidAccountName.NotFound"
