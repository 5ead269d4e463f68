"""Signing guarantees the published vectors do not pin: the clock's time zone and the
exact names of the V3 headers and V2 common parameters the gateway looks for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from accounts_app.alibaba import signing

ROOT = Path(__file__).resolve().parent.parent
SHANGHAI = timezone(timedelta(hours=8))

# Run on a host whose local time is Beijing time: every timestamp must still be UTC.
TIMESTAMPS_ON_A_SHANGHAI_HOST = """
import json, time
from datetime import datetime, timedelta, timezone
from accounts_app.alibaba import signing
common = dict(access_key_id="id", access_key_secret="secret")
print(json.dumps({
    "tzname": time.tzname[0],
    "now": signing.utc_timestamp(),
    "given": signing.utc_timestamp(datetime(2026, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))),
    "v3": signing.v3_signed_headers(
        host="h", action="A", version="2015-01-01", body=b"", **common
    )["x-acs-date"],
    "v2": signing.v2_signed_params(action="A", version="2015-01-01", params={}, **common)[
        "Timestamp"
    ],
}))
"""


def parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, signing.TIMESTAMP_FORMAT).replace(tzinfo=UTC)


def test_timestamps_are_utc_on_a_host_set_to_asia_shanghai():
    before = datetime.now(UTC).replace(microsecond=0)
    run = subprocess.run(
        [sys.executable, "-c", TIMESTAMPS_ON_A_SHANGHAI_HOST],
        cwd=ROOT,
        env={**os.environ, "TZ": "Asia/Shanghai"},
        capture_output=True,
        text=True,
        check=True,
    )
    after = datetime.now(UTC) + timedelta(seconds=1)
    stamps = json.loads(run.stdout)
    assert stamps.pop("tzname") == "CST"  # the child really ran on Beijing time
    assert stamps.pop("given") == "2026-03-01T00:00:00Z"
    for name, stamp in stamps.items():
        assert before <= parse(stamp) <= after, (name, stamp)


def test_a_given_aware_time_is_converted_to_utc():
    assert signing.utc_timestamp(datetime(2026, 3, 1, 7, 59, 58, tzinfo=SHANGHAI)) == (
        "2026-02-28T23:59:58Z"
    )


def test_v3_sends_and_signs_exactly_the_headers_the_gateway_reads():
    headers = signing.v3_signed_headers(
        host="r-kvstore.aliyuncs.com",
        action="CreateAccount",
        version="2015-01-01",
        body=b"AccountName=app",
        access_key_id="LTAIexample",
        access_key_secret="secret",
        timestamp="2026-03-01T00:00:00Z",
        nonce="n0nce",
    )
    authorization = headers.pop("authorization")
    assert headers == {
        "host": "r-kvstore.aliyuncs.com",
        "content-type": "application/x-www-form-urlencoded",
        "x-acs-action": "CreateAccount",
        "x-acs-version": "2015-01-01",
        "x-acs-date": "2026-03-01T00:00:00Z",
        "x-acs-signature-nonce": "n0nce",
        "x-acs-content-sha256": signing.sha256_hex(b"AccountName=app"),
    }
    assert authorization.startswith(
        "ACS3-HMAC-SHA256 Credential=LTAIexample,SignedHeaders=content-type;host;x-acs-action;"
        "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature="
    )


def test_v3_signs_an_sts_token_in_its_own_header():
    headers = signing.v3_signed_headers(
        host="h",
        action="A",
        version="v",
        body=b"",
        access_key_id="id",
        access_key_secret="secret",
        security_token="sts-token",
    )
    assert headers["x-acs-security-token"] == "sts-token"
    assert ";x-acs-security-token;" in headers["authorization"]


def test_v2_adds_exactly_the_common_parameters_the_gateway_reads():
    signed = signing.v2_signed_params(
        action="CreateAccount",
        version="2015-01-01",
        params={"AccountName": "app"},
        access_key_id="LTAIexample",
        access_key_secret="secret",
        timestamp="2026-03-01T00:00:00Z",
        nonce="n0nce",
    )
    signature = signed.pop("Signature")
    assert signed == {
        "AccountName": "app",
        "Action": "CreateAccount",
        "Version": "2015-01-01",
        "Format": "JSON",
        "AccessKeyId": "LTAIexample",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": "n0nce",
        "Timestamp": "2026-03-01T00:00:00Z",
    }
    assert signature == signing.v2_signature("POST", signed, "secret")


def test_a_nonce_is_128_random_bits_in_hex():
    nonce = signing.new_nonce()
    assert len(nonce) == 32
    int(nonce, 16)


def canonical_path(**pathname) -> str:
    canonical, _ = signing.v3_canonical_request(
        method="POST", query={}, headers={"host": "h"}, payload_hash="p", **pathname
    )
    return canonical.split("\n")[1]


def test_the_canonical_path_is_a_slash_when_none_is_given():
    assert canonical_path() == "/"
    assert canonical_path(pathname="") == "/"
    assert canonical_path(pathname="/accounts") == "/accounts"


def test_the_authorization_signs_the_path_it_is_given():
    def authorization(pathname: str) -> str:
        return signing.v3_authorization(
            method="POST",
            query={},
            headers={"host": "h"},
            payload_hash="p",
            access_key_id="id",
            access_key_secret="secret",
            pathname=pathname,
        )

    assert authorization("/accounts") != authorization("/")
    assert authorization("") == authorization("/")
