"""Alibaba's official Python SDKs work against the simulator unchanged.

``alibabacloud-r-kvstore20150101`` signs with V3 (ACS3-HMAC-SHA256) and
``aliyun-python-sdk-r-kvstore`` with V2 (HMAC-SHA1); both are test-only dependencies,
pointed at the simulator's endpoint over HTTP. If the simulator's protocol drifted from
Alibaba's, these SDKs would be the first to notice.
"""

from __future__ import annotations

import json

import pytest
from alibabacloud_r_kvstore20150101 import models as v3_models
from alibabacloud_r_kvstore20150101.client import Client as V3Client
from alibabacloud_tea_openapi import models as openapi_models
from alibabacloud_tea_openapi.exceptions import ClientException
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkr_kvstore.request.v20150101.CreateAccountRequest import CreateAccountRequest
from aliyunsdkr_kvstore.request.v20150101.DescribeAccountsRequest import DescribeAccountsRequest
from aliyunsdkr_kvstore.request.v20150101.DescribeInstanceAttributeRequest import (
    DescribeInstanceAttributeRequest,
)
from aliyunsdkr_kvstore.request.v20150101.DescribeInstancesRequest import DescribeInstancesRequest

from tests.demo_instances import HEALTHY, PASSWORD_FREE

HZ, SH = "cn-hangzhou", "cn-shanghai"
PASSWORD = "Sdk-Pass-2024"


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    # Both SDKs read proxies from the environment; the simulator is on loopback.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


# --- V3: alibabacloud-r-kvstore20150101 ----------------------------------------------------------


@pytest.fixture
def v3_sdk(simulator):
    config = openapi_models.Config(
        access_key_id=simulator.access_key_id,
        access_key_secret=simulator.access_key_secret,
        endpoint=f"{simulator.host}:{simulator.port}",
        protocol="http",
        region_id=HZ,
    )
    return V3Client(config)


def v3_create(sdk, name, password=PASSWORD):
    request = v3_models.CreateAccountRequest(
        instance_id=HEALTHY,
        account_name=name,
        account_password=password,
        account_privilege="RoleReadOnly",
        account_description="sdk-test",
    )
    return sdk.create_account(request)


def test_v3_sdk_creates_an_account(simulator, v3_sdk):
    response = v3_create(v3_sdk, "sdk_v3")
    assert response.status_code == 200
    assert response.body.acount_name == "sdk_v3"
    assert response.body.instance_id == HEALTHY
    assert response.body.request_id
    [call] = simulator.calls("CreateAccount")
    assert call["signature_version"] == "v3"
    assert "sdk_v3" in simulator.account_names(HEALTHY)


def test_v3_sdk_sees_a_duplicate_name(v3_sdk):
    v3_create(v3_sdk, "sdk_v3")
    with pytest.raises(ClientException) as caught:
        v3_create(v3_sdk, "sdk_v3")
    assert caught.value.code == "InvalidAccountName.Duplicate"
    assert caught.value.status_code == 400


def test_v3_sdk_sees_a_bad_password(v3_sdk):
    with pytest.raises(ClientException) as caught:
        v3_create(v3_sdk, "sdk_v3", password="short")
    assert caught.value.code == "InvalidAccountPassword.Format"
    assert caught.value.status_code == 400


def test_v3_sdk_describes(simulator, v3_sdk):
    accounts = v3_sdk.describe_accounts(v3_models.DescribeAccountsRequest(instance_id=HEALTHY))
    names = [a.account_name for a in accounts.body.accounts.account]
    assert "orders_app" in names

    instances = v3_sdk.describe_instances(v3_models.DescribeInstancesRequest(region_id=SH))
    assert instances.body.total_count == 4
    assert PASSWORD_FREE in [i.instance_id for i in instances.body.instances.kvstore_instance]

    attribute = v3_sdk.describe_instance_attribute(
        v3_models.DescribeInstanceAttributeRequest(instance_id=PASSWORD_FREE)
    )
    assert attribute.body.instances.dbinstance_attribute[0].vpc_auth_mode == "Close"
    orders = v3_sdk.describe_instance_attribute(
        v3_models.DescribeInstanceAttributeRequest(instance_id=HEALTHY)
    )
    assert orders.body.instances.dbinstance_attribute[0].vpc_auth_mode == "Open"


def test_v3_sdk_sees_the_built_in_accounts(v3_sdk):
    accounts = v3_sdk.describe_accounts(
        v3_models.DescribeAccountsRequest(instance_id=PASSWORD_FREE)
    ).body.accounts.account
    types = {a.account_name: a.account_type for a in accounts}
    assert types == {PASSWORD_FREE: "Super", "default": "Super", "flags_ro": "Normal"}


def test_v3_sdk_sees_an_account_being_created_and_the_busy_instance(simulator, v3_sdk):
    simulator.set_activation_delay(60)
    v3_create(v3_sdk, "sdk_first")
    [first] = v3_sdk.describe_accounts(
        v3_models.DescribeAccountsRequest(instance_id=HEALTHY, account_name="sdk_first")
    ).body.accounts.account
    assert first.account_status == "Unavailable"

    with pytest.raises(ClientException) as caught:
        v3_create(v3_sdk, "sdk_second")
    assert caught.value.code == "IncorrectDBInstanceState"
    assert caught.value.status_code == 403
    assert "sdk_second" not in simulator.account_names(HEALTHY)


def test_v3_sdk_with_a_wrong_secret_is_refused(simulator):
    config = openapi_models.Config(
        access_key_id=simulator.access_key_id,
        access_key_secret="wrong",
        endpoint=f"{simulator.host}:{simulator.port}",
        protocol="http",
    )
    with pytest.raises(ClientException) as caught:
        V3Client(config).describe_instances(v3_models.DescribeInstancesRequest(region_id=HZ))
    assert caught.value.code == "SignatureDoesNotMatch"


# --- V2: aliyun-python-sdk-r-kvstore -------------------------------------------------------------


@pytest.fixture
def v2_sdk(simulator):
    return AcsClient(simulator.access_key_id, simulator.access_key_secret, HZ, port=simulator.port)


def local(request):
    request.set_endpoint("127.0.0.1")
    request.set_protocol_type("http")
    return request


def v2_create(sdk, name, password=PASSWORD):
    request = local(CreateAccountRequest())
    request.set_InstanceId(HEALTHY)
    request.set_AccountName(name)
    request.set_AccountPassword(password)
    request.set_AccountPrivilege("RoleReadWrite")
    return json.loads(sdk.do_action_with_exception(request))


def test_v2_sdk_creates_an_account(simulator, v2_sdk):
    body = v2_create(v2_sdk, "sdk_v2")
    assert body["AcountName"] == "sdk_v2"
    assert body["InstanceId"] == HEALTHY
    [call] = simulator.calls("CreateAccount")
    assert call["signature_version"] == "v2"


def test_v2_sdk_sees_a_duplicate_name(v2_sdk):
    v2_create(v2_sdk, "sdk_v2")
    with pytest.raises(ServerException) as caught:
        v2_create(v2_sdk, "sdk_v2")
    assert caught.value.get_error_code() == "InvalidAccountName.Duplicate"
    assert caught.value.get_http_status() == 400
    assert caught.value.get_request_id()


def test_v2_sdk_sees_a_bad_password(v2_sdk):
    with pytest.raises(ServerException) as caught:
        v2_create(v2_sdk, "sdk_v2", password="no-digits-here")
    assert caught.value.get_error_code() == "InvalidAccountPassword.Format"


def test_v2_sdk_describes(v2_sdk):
    request = local(DescribeAccountsRequest())
    request.set_InstanceId(HEALTHY)
    accounts = json.loads(v2_sdk.do_action_with_exception(request))["Accounts"]["Account"]
    assert "reporting_ro" in [a["AccountName"] for a in accounts]

    request = local(DescribeInstancesRequest())
    request.set_PageSize(50)
    instances = json.loads(v2_sdk.do_action_with_exception(request))
    assert instances["TotalCount"] == 6  # the client's region, cn-hangzhou

    request = local(DescribeInstanceAttributeRequest())
    request.set_InstanceId(HEALTHY)
    attribute = json.loads(v2_sdk.do_action_with_exception(request))
    assert attribute["Instances"]["DBInstanceAttribute"][0]["VpcAuthMode"] == "Open"


def test_v2_sdk_sees_the_built_in_accounts(v2_sdk):
    request = local(DescribeAccountsRequest())
    request.set_InstanceId(HEALTHY)
    accounts = json.loads(v2_sdk.do_action_with_exception(request))["Accounts"]["Account"]
    types = {a["AccountName"]: a["AccountType"] for a in accounts}
    assert types == {HEALTHY: "Super", "orders_app": "Normal", "reporting_ro": "Normal"}


def test_v2_sdk_sees_an_account_being_created_and_the_busy_instance(simulator, v2_sdk):
    simulator.set_activation_delay(60)
    v2_create(v2_sdk, "sdk_first")
    request = local(DescribeAccountsRequest())
    request.set_InstanceId(HEALTHY)
    request.set_AccountName("sdk_first")
    [first] = json.loads(v2_sdk.do_action_with_exception(request))["Accounts"]["Account"]
    assert first["AccountStatus"] == "Unavailable"

    with pytest.raises(ServerException) as caught:
        v2_create(v2_sdk, "sdk_second")
    assert caught.value.get_error_code() == "IncorrectDBInstanceState"
    assert caught.value.get_http_status() == 403
    assert "sdk_second" not in simulator.account_names(HEALTHY)


def test_v2_sdk_recognises_a_wrong_secret_from_the_string_to_sign(simulator):
    # aliyunsdkcore compares its own string to sign with the one the gateway quotes in
    # SignatureDoesNotMatch; equal strings mean the secret is wrong.
    sdk = AcsClient(simulator.access_key_id, "wrong-secret", HZ, port=simulator.port)
    with pytest.raises(ServerException) as caught:
        v2_create(sdk, "sdk_v2")
    assert caught.value.get_error_code() == "InvalidAccessKeySecret"
