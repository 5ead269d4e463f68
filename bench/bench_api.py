"""The JSON API's list endpoints in `make bench`: measured like the pages, at the same sizes.

Called with the load's signed-in sessions (the API takes a session for GETs as it takes a
token), so wrk measures the same lists a script gets; tests/test_api_queries.py fixes
their query counts with a token.
"""

from __future__ import annotations

from bench.measure import Page


def api_pages(head: int) -> list[Page]:
    return [
        Page(
            "api_instances", "API: instances, first page", "/api/v1/instances", "requester", "api"
        ),
        Page(
            "api_instances_filtered",
            "API: instances, one engine",
            "/api/v1/instances?engine=6.0",
            "requester",
            "api",
        ),
        Page("api_requests", "API: requests, first page", "/api/v1/requests", "approver", "api"),
        Page(
            "api_audit", "API: audit events, first page", "/api/v1/audit/events", "auditor", "api"
        ),
        Page(
            "api_audit_deep",
            "API: audit events, 90 % deep",
            f"/api/v1/audit/events?cursor={max(1, int(head * 0.1))}",
            "auditor",
            "api",
        ),
        Page("api_accounts", "API: created accounts", "/api/v1/accounts", "auditor", "api"),
    ]
