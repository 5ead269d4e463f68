"""The simulator behaves as Alibaba's pages say its server does (docs/alibaba-api.md).

Requests are built by hand here (signed with the client's signing module, sent with a
plain ``requests`` call) so the gateway's refusals can be provoked one by one. The
expected codes, messages and statuses are copied from Alibaba's pages, not imported from
the simulator.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts_app.alibaba import signing
from accounts_app.management.commands import kvstore_simulator
from accounts_app.simulator.httpserver import SimulatorServer
from accounts_app.simulator.server import Simulator
from tests.demo_instances import (
    CHANGING,
    CLUSTER_40,
    CLUSTER_60,
    FULL,
    HEALTHY,
    OLD_ENGINE,
    PASSWORD_FREE,
    REPL_OK,
    RWSPLIT_70,
    TAIR,
)

HZ, SH = "cn-hangzhou", "cn-shanghai"
PASSWORD = "Canary-Sim-77"
ROOT = Path(__file__).resolve().parent.parent

# From Alibaba's CreateAccount page and the codes seen in practice (docs/alibaba-api.md).
EXPECTED = {
    "InvalidAccountName.Duplicate": (
        400,
        "Specified AccountName already exists in this instance.",
    ),
    "InvalidAccountName.Format": (400, "Specified AccountName is not valid."),
    "InvalidAccountName.Forbid": (400, "Specified AccountName is a keyword."),
    "InvalidAccountPassword.Format": (400, "Specified AccountPassword is not valid."),
    "InvalidAccountDescription.Format": (400, "Specified AccountDescription is not valid."),
    "InvalidAccountPrivilege.Malformed": (400, "Specified account privilege is not valid."),
    "InvalidEngineVersion.Format": (400, "Current EngineVersion does not support operations."),
    "AccountLimitExceeded": (403, "Exceeding the allowed amount of account."),
    "IncorrectDBInstanceState": (
        403,
        "Current DB instance state does not support this operation.",
    ),
    "SignatureDoesNotMatch": (400, "Specified signature is not matched with our calculation."),
    "SignatureNonceUsed": (400, "Specified signature nonce was used already."),
    "InvalidTimeStamp.Expired": (400, "Specified time stamp or date value is expired."),
    "InvalidAccessKeyId.NotFound": (404, "Specified access key is not found."),
}


class Wire:
    """Hand-built signed requests to the simulator."""

    def __init__(self, handle):
        self.handle = handle

    def v3(
        self,
        action,
        params,
        *,
        in_query=False,
        secret=None,
        key_id=None,
        date=None,
        nonce=None,
        body_override=None,
        extra_headers=None,
        security_token=None,
    ):
        query = dict(params) if in_query else {}
        body = b"" if in_query else signing.form_encode(params).encode()
        headers = {
            "host": f"{self.handle.host}:{self.handle.port}",
            "x-acs-action": action,
            "x-acs-version": "2015-01-01",
            "x-acs-date": date or signing.utc_timestamp(),
            "x-acs-signature-nonce": nonce or signing.new_nonce(),
            "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
        }
        if not in_query:
            headers["content-type"] = "application/x-www-form-urlencoded"
        if security_token:
            headers["x-acs-security-token"] = security_token
        headers["authorization"] = signing.v3_authorization(
            method="POST",
            query=query,
            headers=headers,
            payload_hash=headers["x-acs-content-sha256"],
            access_key_id=key_id or self.handle.access_key_id,
            access_key_secret=secret or self.handle.access_key_secret,
        )
        headers.update(extra_headers or {})
        url = self.handle.endpoint + "/"
        if query:
            url += "?" + signing.form_encode(query)
        data = body if body_override is None else body_override
        return requests.post(url, data=data, headers=headers, timeout=5)

    def v2_params(self, action, params, *, secret=None, method="POST", **common):
        return signing.v2_signed_params(
            action=action,
            version="2015-01-01",
            params=params,
            access_key_id=common.pop("key_id", None) or self.handle.access_key_id,
            access_key_secret=secret or self.handle.access_key_secret,
            method=method,
            **common,
        )

    def send_v2(self, signed, *, method="POST", in_query=False):
        url = self.handle.endpoint + "/"
        if in_query or method == "GET":
            return requests.request(method, url + "?" + signing.form_encode(signed), timeout=5)
        return requests.post(
            url,
            data=signing.form_encode(signed).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
            timeout=5,
        )

    def v2(self, action, params, *, method="POST", in_query=False, **common):
        signed = self.v2_params(action, params, method=method, **common)
        return self.send_v2(signed, method=method, in_query=in_query)

    def create(self, name="sim_new", password=PASSWORD, instance_id=HEALTHY, **extra):
        params = {"InstanceId": instance_id, "AccountName": name, "AccountPassword": password}
        params.update(extra)
        return self.v3("CreateAccount", params)


@pytest.fixture
def wire(simulator):
    return Wire(simulator)


def assert_error(response, code, status=None, message=None):
    body = response.json()
    expected_status, expected_message = EXPECTED.get(code, (status, message))
    assert (response.status_code, body["Code"]) == (expected_status, code), body
    if expected_message is not None:
        assert body["Message"] == expected_message
    assert_request_id(body["RequestId"])
    assert body["HostId"]
    assert body["Recommend"].startswith("https://")
    assert response.headers["x-acs-request-id"] == body["RequestId"]


def assert_request_id(value):
    assert value == value.upper()
    assert uuid.UUID(value).version == 4


# --- Gateway -------------------------------------------------------------------------------------


def test_a_correct_v3_request_is_served(wire):
    response = wire.v3("DescribeInstances", {"RegionId": HZ})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert_request_id(response.json()["RequestId"])


def test_a_v3_request_signed_with_the_wrong_secret_is_refused(wire):
    assert_error(
        wire.v3("DescribeInstances", {"RegionId": HZ}, secret="nope"), "SignatureDoesNotMatch"
    )


def test_a_v3_body_changed_after_signing_is_refused(wire):
    response = wire.v3("DescribeInstances", {"RegionId": HZ}, body_override=b"RegionId=cn-shanghai")
    assert_error(response, "SignatureDoesNotMatch")


def test_an_unsigned_acs_header_is_refused(wire):
    response = wire.v3(
        "DescribeInstances", {"RegionId": HZ}, extra_headers={"x-acs-extra": "smuggled"}
    )
    assert_error(response, "SignatureDoesNotMatch")


def test_a_v2_signature_mismatch_quotes_the_servers_string_to_sign(wire):
    signed = wire.v2_params("DescribeInstances", {"RegionId": HZ}, secret="nope")
    response = wire.send_v2(signed)
    body = response.json()
    assert (response.status_code, body["Code"]) == (400, "SignatureDoesNotMatch")
    expected = signing.v2_string_to_sign("POST", signed)
    assert body["Message"] == (
        "Specified signature is not matched with our calculation. "
        f"server string to sign is:{expected}"
    )
    # What aliyunsdkcore does with it: the text after the first colon.
    assert body["Message"].split(":")[1] == expected


@pytest.mark.parametrize("minutes", [-16, 16])
def test_a_timestamp_more_than_15_minutes_off_is_refused(wire, minutes):
    stamp = (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert_error(
        wire.v3("DescribeInstances", {"RegionId": HZ}, date=stamp), "InvalidTimeStamp.Expired"
    )
    assert_error(
        wire.v2("DescribeInstances", {"RegionId": HZ}, timestamp=stamp), "InvalidTimeStamp.Expired"
    )


def test_a_timestamp_14_minutes_off_is_accepted(wire):
    stamp = (datetime.now(UTC) - timedelta(minutes=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert wire.v3("DescribeInstances", {"RegionId": HZ}, date=stamp).status_code == 200


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_a_reused_nonce_is_refused(wire, version):
    send = wire.v3 if version == "v3" else wire.v2
    assert send("DescribeInstances", {"RegionId": HZ}, nonce="same-nonce").status_code == 200
    assert_error(
        send("DescribeInstances", {"RegionId": HZ}, nonce="same-nonce"), "SignatureNonceUsed"
    )


@pytest.mark.parametrize("version", ["v3", "v2"])
def test_an_unknown_access_key_is_refused(wire, version):
    send = wire.v3 if version == "v3" else wire.v2
    response = send("DescribeInstances", {"RegionId": HZ}, key_id="LTAIunknown")
    assert_error(response, "InvalidAccessKeyId.NotFound")


def test_a_missing_signature_parameter_is_reported_by_name(wire):
    signed = wire.v2_params("DescribeInstances", {"RegionId": HZ})
    del signed["Timestamp"]
    response = wire.send_v2(signed)
    assert_error(
        response,
        "MissingParameter",
        400,
        'The input parameter "Timestamp" that is mandatory for processing this request is not '
        "supplied.",
    )


def test_a_missing_operation_parameter_is_reported_by_name(wire):
    response = wire.v3("CreateAccount", {"InstanceId": HEALTHY, "AccountName": "sim_new"})
    assert_error(
        response,
        "MissingParameter",
        400,
        'The input parameter "AccountPassword" that is mandatory for processing this request is '
        "not supplied.",
    )


def test_parameters_are_read_from_the_query_string_too(wire, simulator):
    assert wire.v3("DescribeInstances", {"RegionId": HZ}, in_query=True).status_code == 200
    assert wire.v2("DescribeInstances", {"RegionId": HZ}, method="GET").status_code == 200
    params = {"InstanceId": HEALTHY, "AccountName": "in_query", "AccountPassword": PASSWORD}
    assert wire.v3("CreateAccount", params, in_query=True).status_code == 200
    call = simulator.calls("CreateAccount")[-1]
    assert "AccountPassword" in call["query_keys"]  # how the official SDKs send it


def test_every_answer_has_a_request_id(wire):
    for response in (
        wire.v3("DescribeInstances", {"RegionId": HZ}),
        wire.v3("DescribeInstances", {"RegionId": HZ}, secret="bad"),
        wire.create(name="ADMIN"),
        wire.v3("NoSuchAction", {}),
    ):
        assert_request_id(response.json()["RequestId"])


# --- CreateAccount rules -------------------------------------------------------------------------


def test_create_account_answers_both_spellings_of_the_name(wire):
    response = wire.create()
    assert response.status_code == 200
    body = response.json()
    assert body["AcountName"] == body["AccountName"] == "sim_new"
    assert body["InstanceId"] == HEALTHY


@pytest.mark.parametrize("name", ["a", "abc_123", "a" * 16, "z9_"])
def test_valid_account_names_are_accepted(wire, name):
    assert wire.create(name=name).status_code == 200


@pytest.mark.parametrize(
    "name",
    ["A", "Abc", "1abc", "_abc", "abc-def", "a" * 17, "abc\n", "abc ", "ábc", "ab.c", "中文"],
)
def test_malformed_account_names_are_refused(wire, name):
    assert_error(wire.create(name=name), "InvalidAccountName.Format")


@pytest.mark.parametrize("name", ["admin", "root", "select", "test", "x509", "drc_rds", "guest"])
def test_reserved_account_names_are_refused(wire, name):
    assert_error(wire.create(name=name), "InvalidAccountName.Forbid")


SPECIALS = "!@#$%^&*()_+-="


@pytest.mark.parametrize(
    "password",
    [
        "Abcdef12",  # three kinds, 8 characters
        "abcdef1!",
        "ABCDEF1!",
        "abcdefG!",
        "Aa1!" * 8,  # 32 characters
        *[f"Abcdefg{special}" for special in SPECIALS],
    ],
)
def test_valid_passwords_are_accepted(wire, password):
    assert wire.create(password=password).status_code == 200


@pytest.mark.parametrize(
    "password",
    [
        "Abcde1!",  # 7 characters
        "Aa1!" * 8 + "a",  # 33
        "abcdefgh12",  # two kinds
        "ABCDEFGH",  # one kind
        "Abcdef12 ",
        "Abcdef12.",
        "Abcdef12:",
        "Abcdef12~",
        "Abcdef12é",
        "Abcdef12\n",
        "Abcdef12中",
    ],
)
def test_invalid_passwords_are_refused(wire, password):
    assert_error(wire.create(password=password), "InvalidAccountPassword.Format")


@pytest.mark.parametrize(
    "description", ["ab", "testaccount", "a" * 256, "数据分析", "中a", "a-b_c1", "Ab-9"]
)
def test_valid_descriptions_are_accepted(wire, description):
    assert wire.create(AccountDescription=description).status_code == 200


@pytest.mark.parametrize(
    "description",
    [
        "a",
        "a" * 257,
        "1abc",
        "_abc",
        "-abc",
        "this is a test account",
        "http://example",
        "https://example",
        "abc.def",
        "ab!",
        "abc\n",
    ],
)
def test_invalid_descriptions_are_refused(wire, description):
    assert_error(wire.create(AccountDescription=description), "InvalidAccountDescription.Format")


def test_an_unknown_privilege_is_refused(wire):
    assert_error(wire.create(AccountPrivilege="RoleAdmin"), "InvalidAccountPrivilege.Malformed")


@pytest.mark.parametrize("privilege", ["RoleReadOnly", "RoleReadWrite"])
def test_read_only_and_read_write_are_accepted(wire, privilege):
    assert wire.create(AccountPrivilege=privilege).status_code == 200


def test_role_repl_is_accepted_only_on_standard_redis_40(wire):
    assert wire.create(instance_id=REPL_OK, AccountPrivilege="RoleRepl").status_code == 200
    for instance_id in (HEALTHY, CLUSTER_40, CLUSTER_60):
        response = wire.v3(
            "CreateAccount",
            {
                "InstanceId": instance_id,
                "AccountName": "repl_x",
                "AccountPassword": PASSWORD,
                "AccountPrivilege": "RoleRepl",
            },
        )
        assert_error(response, "InvalidAccountPrivilege.Malformed")


def test_only_normal_accounts_can_be_created(wire):
    assert wire.create(AccountType="Normal").status_code == 200
    assert_error(
        wire.create(name="super_x", AccountType="Super"),
        "InvalidParameter",
        400,
        "Specified parameter AccountType is not valid.",
    )


def test_redis_28_cannot_have_accounts(wire):
    assert_error(wire.create(instance_id=OLD_ENGINE), "InvalidEngineVersion.Format")


def test_an_instance_that_is_not_running_refuses(wire):
    assert_error(wire.create(instance_id=CHANGING), "IncorrectDBInstanceState")


def test_the_nineteenth_account_is_refused(wire, simulator):
    accounts = simulator.accounts(FULL)
    assert len([a for a in accounts if a["AccountType"] == "Normal"]) == 18
    assert_error(wire.create(instance_id=FULL), "AccountLimitExceeded")


def test_a_duplicate_name_is_refused(wire):
    assert wire.create().status_code == 200
    assert_error(wire.create(), "InvalidAccountName.Duplicate")


def test_an_unknown_instance_or_another_regions_instance_is_not_found(wire):
    for response in (
        wire.create(instance_id="r-bp1doesnotexist00"),
        wire.create(RegionId=SH),  # HEALTHY lives in cn-hangzhou
    ):
        body = response.json()
        assert (response.status_code, body["Code"]) == (404, "InvalidInstanceId.NotFound")


def test_accounts_are_created_one_at_a_time_up_to_the_limit(simulator, wire):
    simulator.add_instance(InstanceId="r-bp1concurrency0000", RegionId=HZ)
    results = []

    def create(number):
        response = wire.create(name=f"c{number:02d}", instance_id="r-bp1concurrency0000")
        results.append(response.json().get("Code"))

    threads = [threading.Thread(target=create, args=(n,)) for n in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(None) == 18
    assert results.count("AccountLimitExceeded") == 7
    assert len(simulator.accounts("r-bp1concurrency0000")) == 18


def test_the_same_name_created_concurrently_exists_once(simulator, wire):
    codes = []
    threads = [
        threading.Thread(target=lambda: codes.append(wire.create(name="racer").json().get("Code")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes.count(None) == 1
    assert codes.count("InvalidAccountName.Duplicate") == 7
    assert simulator.account_names(HEALTHY).count("racer") == 1


# --- Account lifecycle ---------------------------------------------------------------------------


def describe_account(wire, name, instance_id=HEALTHY):
    response = wire.v3("DescribeAccounts", {"InstanceId": instance_id, "AccountName": name})
    return response.json()["Accounts"]["Account"]


def test_a_new_account_is_unavailable_then_available(simulator, wire):
    simulator.set_activation_delay(60)
    wire.create()
    [account] = describe_account(wire, "sim_new")
    assert account["AccountStatus"] == "Unavailable"
    assert account["DatabasePrivileges"]["DatabasePrivilege"][0]["AccountPrivilege"] == (
        "RoleReadWrite"
    )
    simulator.clock.advance(59)
    assert describe_account(wire, "sim_new")[0]["AccountStatus"] == "Unavailable"
    simulator.clock.advance(2)
    assert describe_account(wire, "sim_new")[0]["AccountStatus"] == "Available"


def test_delete_account(simulator, wire):
    simulator.set_activation_delay(60)
    wire.create()
    delete = {"InstanceId": HEALTHY, "AccountName": "sim_new"}
    response = wire.v3("DeleteAccount", delete)
    assert (response.status_code, response.json()["Code"]) == (403, "OperationDenied.AccountStatus")
    simulator.clock.advance(61)
    assert wire.v3("DeleteAccount", delete).status_code == 200
    # Still listed while the deletion settles, like a new account.
    assert describe_account(wire, "sim_new")[0]["AccountStatus"] == "Unavailable"
    simulator.clock.advance(61)
    assert describe_account(wire, "sim_new") == []
    response = wire.v3("DeleteAccount", delete)
    assert (response.status_code, response.json()["Code"]) == (404, "InvalidAccountName.NotFound")


# --- Describe operations -------------------------------------------------------------------------


def describe_instances(wire, **params):
    response = wire.v3("DescribeInstances", {"RegionId": HZ, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_describe_instances_pages(simulator, wire):
    for number in range(40):
        simulator.add_instance(InstanceId=f"r-bp1page{number:012d}", RegionId=HZ)
    first = describe_instances(wire)
    assert (first["TotalCount"], first["PageNumber"], first["PageSize"]) == (46, 1, 30)
    assert len(first["Instances"]["KVStoreInstance"]) == 30
    last = describe_instances(wire, PageNumber="2", PageSize="30")
    assert len(last["Instances"]["KVStoreInstance"]) == 16
    big = describe_instances(wire, PageSize="50")
    assert len(big["Instances"]["KVStoreInstance"]) == 46
    assert wire.v3("DescribeInstances", {"RegionId": HZ, "PageSize": "51"}).status_code == 400
    assert wire.v3("DescribeInstances", {"RegionId": HZ, "PageNumber": "0"}).status_code == 400


def ids(body):
    return {i["InstanceId"] for i in body["Instances"]["KVStoreInstance"]}


def test_describe_instances_filters(wire):
    assert ids(describe_instances(wire, InstanceIds=f"{HEALTHY}, {OLD_ENGINE}")) == {
        HEALTHY,
        OLD_ENGINE,
    }
    assert ids(describe_instances(wire, InstanceStatus="Changing")) == {CHANGING}
    assert ids(describe_instances(wire, InstanceIds=PASSWORD_FREE)) == set()  # another region
    too_many = ",".join(f"r-x{n}" for n in range(31))
    assert (
        wire.v3("DescribeInstances", {"RegionId": HZ, "InstanceIds": too_many}).status_code == 400
    )
    missing = wire.v3("DescribeInstances", {})
    assert missing.json()["Code"] == "MissingParameter"


def test_vpc_auth_mode_is_reported_by_instance_attribute_only(wire):
    listed = describe_instances(wire)["Instances"]["KVStoreInstance"]
    assert all("VpcAuthMode" not in item for item in listed)
    response = wire.v3("DescribeInstanceAttribute", {"InstanceId": PASSWORD_FREE})
    [attribute] = response.json()["Instances"]["DBInstanceAttribute"]
    assert attribute["VpcAuthMode"] == "Close"  # password-free access is on
    assert attribute["RegionId"] == SH


def test_the_demo_estate_covers_every_case(simulator):
    instances = {i["InstanceId"]: i for i in simulator.simulator.store.instances()}
    assert len(instances) == 10
    assert {i["RegionId"] for i in instances.values()} == {HZ, SH}
    healthy = [i for i in instances.values() if i["InstanceStatus"] == "Normal"]
    assert {i["EngineVersion"] for i in healthy} >= {"5.0", "6.0", "7.0"}
    assert {i["ArchitectureType"] for i in healthy} == {"standard", "cluster", "rwsplit"}
    assert instances[REPL_OK]["EngineVersion"] == "4.0"
    assert instances[REPL_OK]["ArchitectureType"] == "standard"
    assert instances[OLD_ENGINE]["EngineVersion"] == "2.8"
    assert instances[CHANGING]["InstanceStatus"] != "Normal"
    assert len([a for a in simulator.accounts(FULL) if a["AccountType"] == "Normal"]) == 18
    # Password required (Open, the default) everywhere but on one instance.
    assert [i for i, item in instances.items() if item["VpcAuthMode"] == "Close"] == [PASSWORD_FREE]
    assert instances[TAIR]["EditionType"] == "Enterprise"
    assert instances[RWSPLIT_70]["ArchitectureType"] == "rwsplit"
    for instance_id, instance in instances.items():
        prefix = "r-bp1" if instance["RegionId"] == HZ else "r-uf6"
        assert instance_id.startswith(prefix)
        if instance_id not in (OLD_ENGINE,):
            assert len(simulator.accounts(instance_id)) >= 1


# --- State, logs, secrets ------------------------------------------------------------------------


def test_state_survives_a_restart(simulator, wire):
    assert wire.create().status_code == 200
    simulator.server.stop()

    again = Simulator(state_path=simulator.state_path, access_key_id="k", access_key_secret="s")
    assert "sim_new" in [a["AccountName"] for a in again.accounts(HEALTHY)]


def test_the_state_file_is_written_atomically_and_never_holds_a_password(simulator, wire):
    assert wire.create().status_code == 200
    data = simulator.state_path.read_bytes()
    assert json.loads(data)["format"] == 2
    assert PASSWORD.encode() not in data
    assert [p.name for p in simulator.state_path.parent.iterdir()] == [simulator.state_path.name]


def test_an_absent_state_file_is_created_with_the_demo_estate(tmp_path):
    path = tmp_path / "new" / "state.json"
    Simulator(state_path=path, access_key_id="k", access_key_secret="s")
    assert HEALTHY in json.loads(path.read_text())["instances"]


def test_no_password_in_the_call_log_or_any_log_line(simulator, wire, caplog, capsys):
    caplog.set_level(logging.DEBUG, logger="accounts_app.simulator")
    params = {"InstanceId": HEALTHY, "AccountName": "in_url", "AccountPassword": PASSWORD}
    wire.v3("CreateAccount", params, in_query=True)  # the official SDKs' way: in the URL
    wire.v2("CreateAccount", {**params, "AccountName": "v2_body"}, secret="wrong")
    wire.create()
    calls = simulator.calls()
    assert len(calls) == 3
    # This test's own HTTP library logs the URL it sends; only the simulator's lines count.
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("accounts_app.simulator")]
    assert len(lines) == 3
    dumped = json.dumps(calls) + "\n".join(lines) + "".join(capsys.readouterr())
    assert PASSWORD not in dumped
    assert "Canary" not in dumped
    digest = hashlib.sha256(PASSWORD.encode()).hexdigest()
    assert all(c["params"]["AccountPasswordSha256"] == digest for c in calls)


def test_the_sts_token_is_recorded_hashed(wire, simulator):
    wire.v3("DescribeInstances", {"RegionId": HZ}, security_token="sts-secret-token")
    [call] = simulator.calls()
    assert call["security_token_sha256"] == hashlib.sha256(b"sts-secret-token").hexdigest()
    assert "sts-secret-token" not in json.dumps(call)


# --- Control API ---------------------------------------------------------------------------------


def control(simulator, method, route, payload=None):
    url = f"{simulator.endpoint}/_simulator/{route}"
    return requests.request(method, url, json=payload, timeout=5)


def test_the_control_api_sets_and_clears_faults(simulator, wire):
    response = control(
        simulator, "POST", "faults", {"mode": "throttle", "action": "CreateAccount", "count": 2}
    )
    assert response.status_code == 201
    assert response.json()["fault"]["mode"] == "throttle"
    assert [f["count"] for f in control(simulator, "GET", "faults").json()["faults"]] == [2]
    assert wire.create().json()["Code"] == "Throttling.User"
    assert control(simulator, "DELETE", "faults").status_code == 200
    assert wire.create().status_code == 200
    calls = control(simulator, "GET", "calls?action=CreateAccount").json()["calls"]
    assert [(c["fault"], c["code"]) for c in calls] == [
        ("throttle", "Throttling.User"),
        (None, None),
    ]
    assert control(simulator, "DELETE", "calls").status_code == 200
    assert control(simulator, "GET", "calls").json()["calls"] == []


def test_the_control_api_refuses_nonsense(simulator):
    assert control(simulator, "POST", "faults", {"mode": "explode"}).status_code == 400
    assert control(simulator, "POST", "faults", {}).status_code == 400
    assert control(simulator, "GET", "nowhere").status_code == 404
    bad_json = requests.post(f"{simulator.endpoint}/_simulator/faults", data=b"{", timeout=5)
    assert bad_json.status_code == 400


def test_the_control_api_adds_instances_and_accounts_and_resets(simulator, wire):
    assert control(simulator, "GET", "health").json() == {"ok": True}
    response = control(
        simulator,
        "POST",
        "instances",
        {"InstanceId": "r-bp1added000000000", "RegionId": HZ, "EngineVersion": "7.0"},
    )
    assert response.status_code == 201
    response = control(
        simulator,
        "POST",
        "accounts",
        {
            "InstanceId": "r-bp1added000000000",
            "AccountName": "seeded",
            "AccountStatus": "Unavailable",
        },
    )
    assert response.status_code == 201
    [seeded] = describe_account(wire, "seeded", "r-bp1added000000000")
    assert seeded["AccountStatus"] == "Unavailable"
    assert control(simulator, "POST", "config", {"activation_seconds": 0}).json() == {
        "activation_seconds": 0.0,
        "activation_delay": 0.0,
    }
    state = control(simulator, "GET", "state").json()
    assert "r-bp1added000000000" in state["instances"]
    assert control(simulator, "POST", "reset").status_code == 200
    assert "r-bp1added000000000" not in control(simulator, "GET", "state").json()["instances"]


def test_a_fault_can_target_one_instance(simulator, wire):
    simulator.add_fault("http500", instance_id=REPL_OK, count=0)
    assert wire.create().status_code == 200
    response = wire.create(instance_id=REPL_OK)
    assert (response.status_code, response.json()["Code"]) == (500, "InternalError")


def test_the_malformed_fault_commits_and_truncates(simulator, wire):
    simulator.add_fault("malformed", action="CreateAccount")
    response = wire.create()
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert "sim_new" in simulator.account_names(HEALTHY)
    assert simulator.calls("CreateAccount")[0]["committed"] is True


def test_the_html_fault_answers_like_a_proxy(simulator, wire):
    simulator.add_fault("html")
    response = wire.create()
    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert "sim_new" not in simulator.account_names(HEALTHY)


def test_the_reset_fault_resets_the_connection(simulator, wire):
    simulator.add_fault("reset")
    with pytest.raises(requests.ConnectionError):
        wire.create()
    assert "sim_new" not in simulator.account_names(HEALTHY)


# --- Running it ----------------------------------------------------------------------------------


def test_the_management_command_passes_its_arguments_to_serve(monkeypatch, settings, tmp_path):
    received = {}
    monkeypatch.setattr(kvstore_simulator.cli, "serve", lambda **kw: received.update(kw))
    settings.ALIBABA_CLOUD_ACCESS_KEY_ID = "LTAIenv"
    settings.ALIBABA_CLOUD_ACCESS_KEY_SECRET = "secret-env"

    call_command(
        kvstore_simulator.Command(),
        "--port",
        "8123",
        "--state",
        str(tmp_path / "s.json"),
        "--activation-delay",
        "0.5",
    )

    assert received == {
        "host": "127.0.0.1",
        "port": 8123,
        "state_path": str(tmp_path / "s.json"),
        "access_key_id": "LTAIenv",
        "access_key_secret": "secret-env",
        "activation_delay": 0.5,
    }


def test_the_management_command_flags_override_the_environment(monkeypatch):
    received = {}
    monkeypatch.setattr(kvstore_simulator.cli, "serve", lambda **kw: received.update(kw))
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIenv")
    call_command(
        kvstore_simulator.Command(), "--access-key-id", "flag-id", "--access-key-secret", "flag-s"
    )
    assert (received["access_key_id"], received["access_key_secret"]) == ("flag-id", "flag-s")


def test_the_management_command_needs_keys(monkeypatch, settings):
    monkeypatch.setattr(kvstore_simulator.cli, "serve", lambda **kw: None)
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", raising=False)
    settings.ALIBABA_CLOUD_ACCESS_KEY_ID = ""
    with pytest.raises(CommandError, match="ALIBABA_CLOUD_ACCESS_KEY_ID"):
        call_command(kvstore_simulator.Command())


def test_the_simulator_runs_as_a_process_and_stops_on_sigint(tmp_path):
    state = tmp_path / "state.json"
    env = {
        **os.environ,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIprocess",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "process-secret",
    }
    process = subprocess.Popen(
        kvstore_simulator.cli.command(state),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in banner
        endpoint = banner.split("listening on ")[1].split()[0]
        assert requests.get(f"{endpoint}/_simulator/health", timeout=5).json() == {"ok": True}
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "stopped" in output
    assert HEALTHY in json.loads(state.read_text())["instances"]


def test_a_server_stops_promptly_even_with_a_call_in_progress(tmp_path):
    simulator = Simulator(state_path=None, access_key_id="k", access_key_secret="s")
    server = SimulatorServer(simulator).start()
    simulator.add_fault("commit_then_timeout", delay=60)
    handle = SimpleNamespace(
        host=server.host,
        port=server.port,
        endpoint=server.endpoint,
        access_key_id="k",
        access_key_secret="s",
    )
    thread = threading.Thread(target=lambda: _swallow(Wire(handle).create), daemon=True)
    thread.start()
    while not simulator.calls():
        threading.Event().wait(0.01)
    started = datetime.now(UTC)
    server.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert datetime.now(UTC) - started < timedelta(seconds=2)


def _swallow(function):
    try:
        function()
    except requests.RequestException:
        pass


# --- Round 2 of the API model: busy instances, built-in accounts, formats -----------------------


def test_the_instance_refuses_the_next_account_while_one_is_being_created(simulator, wire):
    simulator.set_activation_delay(60)
    assert wire.create(name="first_one").status_code == 200

    assert_error(
        wire.create(name="second_one"),
        "IncorrectDBInstanceState",
        403,
        "Current DB instance state does not support this operation.",
    )
    assert "second_one" not in simulator.account_names(HEALTHY)

    simulator.clock.advance(61)
    assert wire.create(name="second_one").status_code == 200


def test_the_activation_time_is_a_flag_with_the_real_default():
    parser = kvstore_simulator.cli.build_parser()
    assert parser.parse_args([]).activation_delay == 60.0
    assert parser.parse_args(["--activation-seconds", "2"]).activation_delay == 2.0


def test_describe_accounts_lists_the_built_in_accounts_as_super(wire):
    accounts = wire.v3("DescribeAccounts", {"InstanceId": TAIR}).json()["Accounts"]["Account"]
    types = {a["AccountName"]: a["AccountType"] for a in accounts}
    # 6.0: one named after the instance, and "default".
    assert types == {TAIR: "Super", "default": "Super", "analyst_ro": "Normal"}
    legacy = wire.v3("DescribeAccounts", {"InstanceId": REPL_OK}).json()["Accounts"]["Account"]
    assert [a["AccountName"] for a in legacy if a["AccountType"] == "Super"] == [REPL_OK]


def test_built_in_accounts_do_not_count_toward_the_limit_of_18(simulator, wire):
    simulator.add_instance(InstanceId="r-bp1limit000000000", RegionId=HZ, EngineVersion="6.0")
    simulator.add_account("r-bp1limit000000000", "r-bp1limit000000000", account_type="Super")
    simulator.add_account("r-bp1limit000000000", "default", account_type="Super")
    for number in range(17):
        simulator.add_account("r-bp1limit000000000", f"user{number:02d}")

    assert wire.create(name="user17", instance_id="r-bp1limit000000000").status_code == 200
    assert_error(
        wire.create(name="user18", instance_id="r-bp1limit000000000"), "AccountLimitExceeded"
    )


@pytest.mark.parametrize(
    ("action", "extra"),
    [
        ("DeleteAccount", {}),
        ("ResetAccountPassword", {"AccountPassword": PASSWORD}),
        ("GrantAccountPrivilege", {"AccountPrivilege": "RoleReadOnly"}),
    ],
)
def test_a_built_in_account_cannot_be_deleted_reset_or_re_privileged(
    simulator, wire, action, extra
):
    params = {"InstanceId": HEALTHY, "AccountName": HEALTHY, **extra}
    response = wire.v3(action, params)
    assert response.status_code == 400
    assert response.json()["Code"] == "IncorrectAccount"
    assert HEALTHY in simulator.account_names(HEALTHY)

    # A user's account can.
    user = wire.v3(action, {**params, "AccountName": "reporting_ro"})
    assert user.status_code == 200, user.text


def test_instance_attribute_has_no_edition_type_but_the_listing_has(wire):
    listed = {
        item["InstanceId"]: item
        for item in describe_instances(wire, RegionId=SH)["Instances"]["KVStoreInstance"]
    }
    assert listed[TAIR]["EditionType"] == "Enterprise"
    response = wire.v3("DescribeInstanceAttribute", {"InstanceId": TAIR})
    [attribute] = response.json()["Instances"]["DBInstanceAttribute"]
    assert "EditionType" not in attribute


def test_an_unknown_instance_has_an_empty_attribute_list(wire):
    response = wire.v3("DescribeInstanceAttribute", {"InstanceId": "r-bp1nothere00000000"})
    assert response.status_code == 200
    assert response.json()["Instances"] == {"DBInstanceAttribute": []}


def test_redis_28_has_no_accounts_to_describe(wire):
    response = wire.v3("DescribeAccounts", {"InstanceId": OLD_ENGINE})
    assert response.json()["Code"] == "InvalidEngineVersion.Format"


def _v2_xml(wire, action, params):
    signed = wire.v2_params(action, params)
    signed["Format"] = "XML"
    del signed["Signature"]
    signed["Signature"] = signing.v2_signature("POST", signed, wire.handle.access_key_secret)
    return wire.send_v2(signed)


def test_a_v2_call_asking_for_xml_is_answered_in_xml(wire):
    import xml.etree.ElementTree as ElementTree

    response = _v2_xml(wire, "DescribeAccounts", {"InstanceId": HEALTHY, "RegionId": HZ})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    root = ElementTree.fromstring(response.content)  # noqa: S314 (our own simulator)
    assert root.tag == "DescribeAccountsResponse"
    assert root.findtext("RequestId")
    names = [a.findtext("AccountName") for a in root.findall("./Accounts/Account")]
    assert names == [HEALTHY, "orders_app", "reporting_ro"]
    privileges = root.findall("./Accounts/Account/DatabasePrivileges/DatabasePrivilege")
    assert privileges[1].findtext("AccountPrivilege") == "RoleReadWrite"

    refused = _v2_xml(wire, "DescribeAccounts", {"RegionId": HZ})
    error = ElementTree.fromstring(refused.content)  # noqa: S314
    assert (refused.status_code, error.tag) == (400, "Error")
    assert error.findtext("Code") == "MissingParameter"
    assert error.findtext("RequestId")


def test_an_error_fault_answers_the_code_it_names(simulator, wire):
    simulator.add_fault("error", action="CreateAccount", code="LockTimeout")
    assert_error(wire.create(), "LockTimeout", 400, "Operation lock timeout, please retry later.")
    assert "sim_new" not in simulator.account_names(HEALTHY)


def test_a_state_file_of_the_first_format_is_replaced_by_the_demo_estate(tmp_path):
    # Format 1 had VpcAuthMode backwards and no "default" accounts: not worth keeping.
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"format": 1, "instances": {}, "accounts": {}}))

    simulator = Simulator(state_path=path, access_key_id="k", access_key_secret="s")

    assert PASSWORD_FREE in [i["InstanceId"] for i in simulator.store.instances()]
    assert json.loads(path.read_text())["format"] == 2


def test_an_idle_keep_alive_connection_closing_is_not_logged_as_an_error(
    simulator, monkeypatch, caplog
):
    import socket
    from urllib.parse import urlsplit

    from accounts_app.simulator import httpserver

    monkeypatch.setattr(httpserver._Handler, "timeout", 0.2)
    address = urlsplit(simulator.endpoint)
    with caplog.at_level(logging.DEBUG, logger="accounts_app.simulator.httpserver"):
        with socket.create_connection((address.hostname, address.port), timeout=5) as idle:
            # The simulator ends the idle connection (its handler logs, then closes).
            assert idle.recv(1) == b""
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if "httpserver" in r.name]
    assert lines == [("DEBUG", "idle connection from 127.0.0.1 closed")]
