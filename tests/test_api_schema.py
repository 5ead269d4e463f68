"""The OpenAPI document: valid, and true to the implementation.

Schemathesis generates calls from the document for every operation and sends them to a
live server on loopback; every answer must be no 5xx, have a status code the document
declares, and a body that conforms to the declared schema. Bounded in examples per
operation so it costs well under a minute.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from accounts_app.api.main import api
from tests.api_support import token_for
from tests.builders import approved_request, submitted_request

EXAMPLES_PER_OPERATION = 15
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def test_the_openapi_document_is_valid_openapi_3_1(client):
    document = client.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    validate(document)
    paths = set(document["paths"])
    assert {
        "/api/v1/instances",
        "/api/v1/instances/{instance_id}",
        "/api/v1/requests",
        "/api/v1/requests/{id}",
        "/api/v1/requests/{id}/approve",
        "/api/v1/requests/{id}/reject",
        "/api/v1/requests/{id}/cancel",
        "/api/v1/requests/{id}/execute",
        "/api/v1/requests/{id}/reconcile",
        "/api/v1/audit/events",
        "/api/v1/accounts",
    } <= paths


def test_the_docs_page_loads_its_assets_from_our_origin_with_nonces(client):
    page = client.get("/api/v1/docs")
    html = page.content.decode()
    assert page.status_code == 200
    assert "cdn" not in html.lower() and "https://" not in html
    nonce = page["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert html.count(f'nonce="{nonce}"') == 2
    assert client.get("/static/ninja/swagger-ui-bundle.js").status_code == 200


# serialized_rollback: the flush afterwards leaves the rows the migrations made for the
# serialized-rollback tests that follow (tests/test_audit_chain.py) to restore.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_every_operation_answers_as_its_document_says(live_server, estate, make_user, settings):
    settings.API_RATE_LIMIT = 100_000
    root = make_user("root", superuser=True)
    requester = make_user("alice", "Requesters")
    approver = make_user("bob", "Approvers")
    submitted_request(requester, name="pending_one")
    approved_request(requester, approver, name="approved_one")
    headers = {"Authorization": f"Bearer {token_for(root)}"}
    schema = schemathesis.openapi.from_dict(api.get_openapi_schema())
    schema.config.base_url = live_server.url
    session = requests.Session()
    for operation in schema.get_all_operations():
        operation = operation.ok()

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case):
            case.call_and_validate(
                base_url=live_server.url, session=session, headers=headers, checks=CHECKS
            )

        answers_as_documented()
