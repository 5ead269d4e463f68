"""Signing reproduces Alibaba's published vectors and agrees with Alibaba's own code.

Vectors: docs/alibaba-api.md, "Signing". Agreement: ``alibabacloud_openapi_util``
(the V3 SDK's helper) and ``aliyunsdkcore`` (the V2 SDK), test-only dependencies.
"""

from __future__ import annotations

import hashlib
import string
from types import SimpleNamespace

from alibabacloud_openapi_util.client import Client as OpenApiUtil
from aliyunsdkcore.auth.composer import rpc_signature_composer
from hypothesis import example, given, settings
from hypothesis import strategies as st

from accounts_app.alibaba import signing

EVERY_ASCII_PRINTABLE = "".join(chr(code) for code in range(32, 127))
AWKWARD_TEXT = EVERY_ASCII_PRINTABLE + "中文 é ß 😀 \u00a0\u2028"

# Any Unicode text that can be UTF-8 encoded (no lone surrogates).
unicode_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
values = st.one_of(unicode_text, st.sampled_from([AWKWARD_TEXT, "", " ", "+", "%20", "*~"]))
secrets = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40)
access_key_ids = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=24)
methods = st.sampled_from(["GET", "POST"])


# --- Published vectors -------------------------------------------------------------------------

V3_HEADERS = {
    "host": "ecs.cn-shanghai.aliyuncs.com",
    "x-acs-action": "RunInstances",
    "x-acs-version": "2014-05-26",
    "x-acs-date": "2023-10-26T10:22:32Z",
    "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
    "x-acs-content-sha256": signing.EMPTY_SHA256,
}
V3_QUERY = {
    "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
    "RegionId": "cn-shanghai",
}

V2_FIRST_EXAMPLE = {
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "Format": "XML",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z",
    "Version": "2014-05-26",
}
V2_SECOND_EXAMPLE = {
    "AccessKeyId": "testid",
    "Action": "DescribeDedicatedHosts",
    "Format": "JSON",
    "RegionId": "cn-beijing",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "edb2b34af0af9a6d14deaf7c1a5315eb",
    "SignatureVersion": "1.0",
    "Timestamp": "2023-03-13T08:34:30Z",
    "Version": "2014-05-26",
}


def test_v3_reproduces_the_published_hashed_canonical_request():
    canonical, signed_headers = signing.v3_canonical_request(
        method="POST", query=V3_QUERY, headers=V3_HEADERS, payload_hash=signing.EMPTY_SHA256
    )
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    )
    assert signed_headers == (
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
    )


def test_v3_reproduces_the_published_signature():
    authorization = signing.v3_authorization(
        method="POST",
        query=V3_QUERY,
        headers=V3_HEADERS,
        payload_hash=signing.EMPTY_SHA256,
        access_key_id="YourAccessKeyId",
        access_key_secret="YourAccessKeySecret",
    )
    assert authorization == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,"
        "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;"
        "x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )


def test_v2_reproduces_the_published_get_example():
    assert signing.v2_signature("GET", V2_FIRST_EXAMPLE, "testsecret") == (
        "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    )


def test_v2_reproduces_the_published_post_example():
    assert signing.v2_signature("POST", V2_FIRST_EXAMPLE, "testsecret") == (
        "MxbnVAM4w6sft9xjVpe/GCKueuk="
    )


def test_v2_reproduces_the_second_published_example():
    assert signing.v2_signature("GET", V2_SECOND_EXAMPLE, "testsecret") == (
        "9NaGiOspFP5UPcwX8Iwt2YJXXuk="
    )


def test_v2_leaves_an_existing_signature_parameter_out_of_the_string_to_sign():
    with_signature = {**V2_FIRST_EXAMPLE, "Signature": "anything"}
    assert signing.v2_signature("GET", with_signature, "testsecret") == (
        "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    )


# --- Percent-encoding ---------------------------------------------------------------------------


def test_percent_encoding_follows_rfc_3986():
    assert signing.percent_encode("a b") == "a%20b"
    assert signing.percent_encode("*") == "%2A"
    assert signing.percent_encode("~-_.") == "~-_."
    assert signing.percent_encode("+/=&") == "%2B%2F%3D%26"
    assert signing.percent_encode("é中") == "%C3%A9%E4%B8%AD"


def test_a_signature_with_a_plus_sign_is_encoded_in_the_form_body():
    # The published page shows the signature with an unencoded "+" in its URL; encode it.
    body = signing.form_encode({"Signature": "OLeaidS1JvxuMvnyHOwuJ+uX5qY="})
    assert body == "Signature=OLeaidS1JvxuMvnyHOwuJ%2BuX5qY%3D"


# --- Agreement with Alibaba's own implementations ---------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    params=st.dictionaries(
        keys=st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12).filter(
            lambda key: key != "Signature"
        ),
        values=values,
        max_size=8,
    ),
    method=methods,
    secret=secrets,
)
@example(params={"AccountPassword": AWKWARD_TEXT, "Key": "v"}, method="POST", secret=AWKWARD_TEXT)
def test_v2_signature_agrees_with_the_openapi_util(params, method, secret):
    assert signing.v2_signature(method, params, secret) == OpenApiUtil.get_rpcsignature(
        params, method, secret
    )


compose_v2_string_to_sign = getattr(rpc_signature_composer, "__compose_string_to_sign")


@settings(max_examples=200, deadline=None)
@given(
    params=st.dictionaries(
        keys=st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=12).filter(
            lambda key: key != "Signature"
        ),
        values=values,
        max_size=8,
    ),
    method=methods,
)
@example(params={"AccountPassword": AWKWARD_TEXT}, method="POST")
def test_v2_string_to_sign_agrees_with_the_v2_sdk(params, method):
    assert signing.v2_string_to_sign(method, params) == compose_v2_string_to_sign(method, params)


# The V3 helper does not encode query keys; API parameter names never need it, so keys are
# drawn from the unreserved characters and values from all of Unicode.
v3_query_keys = st.text(alphabet=string.ascii_letters + string.digits + "-_.~", min_size=1)
v3_header_names = st.from_regex(r"x-acs-[a-z0-9-]{1,16}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(
    query=st.dictionaries(v3_query_keys, values, max_size=8),
    headers=st.dictionaries(v3_header_names, values, max_size=6),
    body=st.binary(max_size=200),
    method=methods,
    access_key_id=access_key_ids,
    secret=secrets,
)
@example(
    query={"AccountPassword": AWKWARD_TEXT},
    headers={"x-acs-action": AWKWARD_TEXT},
    body=AWKWARD_TEXT.encode(),
    method="POST",
    access_key_id="AK",
    secret=AWKWARD_TEXT,
)
def test_v3_authorization_agrees_with_the_openapi_util(
    query, headers, body, method, access_key_id, secret
):
    headers = {"host": "r-kvstore.aliyuncs.com", **headers}
    payload_hash = hashlib.sha256(body).hexdigest()
    request = SimpleNamespace(method=method, pathname="/", query=query, headers=headers)
    ours = signing.v3_authorization(
        method=method,
        query=query,
        headers=headers,
        payload_hash=payload_hash,
        access_key_id=access_key_id,
        access_key_secret=secret,
    )
    theirs = OpenApiUtil.get_authorization(
        request, "ACS3-HMAC-SHA256", payload_hash, access_key_id, secret
    )
    assert ours == theirs


# What the client signs, besides the parameters and the secret.
CLIENT_CALL = {
    "action": "CreateAccount",
    "version": "2015-01-01",
    "access_key_id": "AK",
    "security_token": "sts-token",
}


@settings(max_examples=100, deadline=None)
@given(params=st.dictionaries(v3_query_keys, values, min_size=1, max_size=8), secret=secrets)
def test_the_clients_v3_form_request_verifies_with_the_openapi_util(params, secret):
    body = signing.form_encode(params).encode()
    headers = signing.v3_signed_headers(
        host="127.0.0.1:8001", body=body, access_key_secret=secret, **CLIENT_CALL
    )
    authorization = headers.pop("authorization")
    request = SimpleNamespace(method="POST", pathname="/", query={}, headers=headers)
    assert headers["x-acs-content-sha256"] == hashlib.sha256(body).hexdigest()
    assert "x-acs-security-token" in authorization
    assert authorization == OpenApiUtil.get_authorization(
        request, "ACS3-HMAC-SHA256", headers["x-acs-content-sha256"], "AK", secret
    )


@settings(max_examples=100, deadline=None)
@given(params=st.dictionaries(v3_query_keys, values, max_size=8), secret=secrets)
def test_the_clients_v2_parameters_verify_with_the_openapi_util(params, secret):
    signed = signing.v2_signed_params(params=params, access_key_secret=secret, **CLIENT_CALL)
    signature = signed.pop("Signature")
    assert signed["Format"] == "JSON"
    assert signed["SecurityToken"] == "sts-token"
    assert signature == OpenApiUtil.get_rpcsignature(signed, "POST", secret)


def test_each_request_gets_a_fresh_nonce_and_a_utc_timestamp():
    first, second = signing.new_nonce(), signing.new_nonce()
    assert first != second
    stamp = signing.utc_timestamp()
    assert len(stamp) == 20 and stamp.endswith("Z") and stamp[10] == "T"
