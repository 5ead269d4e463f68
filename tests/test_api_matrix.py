"""Who may do what through the JSON API: every API route of the URLconf x GET/POST x every
actor x every token scope x every request state.

The table is the API's authorization policy written out; a route missing from it fails
the test. The order of refusals leaks nothing: no token is a 401; a token without the
scope a call needs is a 403 whatever the request; a request the user may not see is a
404, like one that does not exist; a missing role is a 403 with an audit event. A
permitted transition happens only in the states the workflow allows it (else 409).
Each combination runs in a savepoint that is rolled back.
"""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from django.test import Client

from accounts_app.models import AccountRequest, AuditEvent, Instance
from accounts_app.services import tokens
from tests.builders import request_form_data
from tests.security_support import (
    ACTORS,
    OWNERS,
    PARAM_VALUES,
    STATES,
    VALID_PASSWORD,
    make_actors,
    request_for,
    requests_by_owner_and_state,
    walk_routes,
)
from tests.test_security_matrix import APPROVERS, DECIDERS, REQUESTERS, SIGNED_IN, VIEWERS

pytestmark = pytest.mark.django_db

Status = AccountRequest.Status
EVERYONE = frozenset(ACTORS)
SEES_THE_REQUEST = OWNERS | VIEWERS
PUBLIC = "public"

# (route, method) -> (scopes, any of which the call needs; actors past the policy; answer).
# Actors outside get 403 with an audit event, or 404 when they may not see the request.
API_LEGAL = {
    ("api:api-root", "GET"): (PUBLIC, EVERYONE, 404),
    ("api:api-root", "POST"): (PUBLIC, EVERYONE, 404),
    ("api:openapi-json", "GET"): (PUBLIC, EVERYONE, 200),
    ("api:openapi-json", "POST"): (PUBLIC, EVERYONE, 200),
    ("api:openapi-view", "GET"): (PUBLIC, EVERYONE, 200),
    ("api:openapi-view", "POST"): (PUBLIC, EVERYONE, 200),
    ("api:instance_list", "GET"): ({"read"}, SIGNED_IN, 200),
    ("api:instance_list", "POST"): (PUBLIC, EVERYONE, 405),
    ("api:instance_detail", "GET"): ({"read"}, SIGNED_IN, 200),
    ("api:instance_detail", "POST"): (PUBLIC, EVERYONE, 405),
    ("api:request_list", "GET"): ({"read"}, SIGNED_IN, 200),
    ("api:request_list", "POST"): ({"request"}, REQUESTERS, 201),
    ("api:request_create", "GET"): ({"read"}, SIGNED_IN, 200),
    ("api:request_create", "POST"): ({"request"}, REQUESTERS, 201),
    ("api:request_detail", "GET"): ({"read"}, SEES_THE_REQUEST, 200),
    ("api:request_detail", "POST"): (PUBLIC, EVERYONE, 405),
    ("api:request_approve", "GET"): (PUBLIC, EVERYONE, 405),
    ("api:request_approve", "POST"): ({"approve"}, DECIDERS, 200),
    ("api:request_reject", "GET"): (PUBLIC, EVERYONE, 405),
    ("api:request_reject", "POST"): ({"approve"}, DECIDERS, 200),
    ("api:request_cancel", "GET"): (PUBLIC, EVERYONE, 405),
    ("api:request_cancel", "POST"): ({"request"}, OWNERS, 200),
    ("api:request_execute", "GET"): (PUBLIC, EVERYONE, 405),
    ("api:request_execute", "POST"): ({"execute"}, OWNERS, 200),
    ("api:request_reconcile", "GET"): (PUBLIC, EVERYONE, 405),
    ("api:request_reconcile", "POST"): ({"execute", "approve"}, OWNERS | APPROVERS, 200),
    ("api:audit_events", "GET"): ({"audit"}, VIEWERS, 200),
    ("api:audit_events", "POST"): (PUBLIC, EVERYONE, 405),
    ("api:created_accounts", "GET"): ({"audit"}, VIEWERS, 200),
    ("api:created_accounts", "POST"): (PUBLIC, EVERYONE, 405),
}
# What a permitted call does to the request, by state; in any other state: 409, unchanged.
TRANSITIONS = {
    "api:request_approve": {Status.PENDING: Status.APPROVED},
    "api:request_reject": {Status.PENDING: Status.REJECTED},
    "api:request_cancel": {Status.PENDING: Status.CANCELLED, Status.APPROVED: Status.CANCELLED},
    "api:request_execute": {Status.APPROVED: Status.CREATED},
    "api:request_reconcile": {Status.NEEDS_RECONCILIATION: Status.APPROVED},
}
BODIES = {
    "api:request_approve": {"comment": "fine"},
    "api:request_reject": {"comment": "no"},
    "api:request_execute": {"account_password": VALID_PASSWORD},
    "api:request_list": request_form_data(account_name="matrix_new"),
    "api:request_create": request_form_data(account_name="matrix_new"),
}
SCOPES = tokens.SCOPES


def api_routes():
    return [route for route in walk_routes() if route.name.startswith("api:")]


def test_the_table_covers_every_api_route():
    names = {route.name for route in api_routes()}
    missing = sorted(f"{n} {m}" for n in names for m in ("GET", "POST") if (n, m) not in API_LEGAL)
    assert not missing, f"Add these routes to API_LEGAL in {__file__}: {missing}"
    assert not {name for name, _ in API_LEGAL} - names


def expected(name, method, actor, scope, state) -> tuple[int, str | None]:
    """(status, the request's status afterwards) that the table implies."""
    scopes, allowed, answer = API_LEGAL[name, method]
    if scopes == PUBLIC:
        return answer, state
    if actor == "anonymous":
        return 401, state
    if scope not in scopes:
        return 403, state
    if state is not None and actor not in SEES_THE_REQUEST:
        return 404, state
    if actor not in allowed:
        return 403, state
    if name in TRANSITIONS:
        after = TRANSITIONS[name].get(state)
        return (answer, after) if after else (409, state)
    return answer, state


class ApiSweep:
    def __init__(self, actors, made) -> None:
        self.made = made
        self.secrets = {
            (actor, scope): tokens.token_create(
                user=user, name=f"{actor}-{scope}", scopes=scope, expires_in_days=1
            ).secret
            for actor, user in actors.items()
            if user is not None
            for scope in SCOPES
        }
        self.client = Client()
        self.problems: list[str] = []
        self.count = 0

    def run(self, route, method: str, actor: str, scope: str, state: str | None) -> None:
        account_request = request_for(actor, state, self.made) if state else None
        values = {**PARAM_VALUES, **({"pk": account_request.pk} if account_request else {})}
        headers = {"Idempotency-Key": f"matrix-{self.count}"}
        if actor != "anonymous":
            headers["Authorization"] = f"Bearer {self.secrets[actor, scope]}"
        want, want_state = expected(route.name, method, actor, scope, state)
        label = f"{method} {route.name} as {actor} with {scope}" + (f" on {state}" if state else "")
        with transaction.atomic():
            denials = AuditEvent.objects.filter(action=AuditEvent.Action.PERMISSION_DENIED).count()
            if method == "GET":
                response = self.client.get(route.url(**values), headers=headers)
            else:
                body = json.dumps(BODIES.get(route.name, {}))
                response = self.client.post(
                    route.url(**values), body, content_type="application/json", headers=headers
                )
            self.count += 1
            new_denials = (
                AuditEvent.objects.filter(action=AuditEvent.Action.PERMISSION_DENIED).count()
                - denials
            )
            if response.status_code != want:
                self.problems.append(f"{label}: expected {want}, got {response.status_code}")
            if (want == 403) != (new_denials == 1):
                self.problems.append(f"{label}: {new_denials} PERMISSION_DENIED events")
            if account_request is not None:
                now = AccountRequest.objects.get(pk=account_request.pk).status
                if now != want_state:
                    self.problems.append(f"{label}: {state} -> {now}, expected {want_state}")
            if want == 409 and response.json().get("status") != state:
                self.problems.append(f"{label}: the 409 does not name the state {state}")
            transaction.set_rollback(True)


def test_every_actor_scope_and_state_on_every_api_route_gets_what_the_table_allows(
    estate, make_user, settings
):
    settings.API_RATE_LIMIT = 1_000_000
    actors = make_actors(make_user)
    instance = Instance.objects.get(instance_id=PARAM_VALUES["instance_id"])
    sweep = ApiSweep(actors, requests_by_owner_and_state(actors, instance))
    for route in api_routes():
        for method in ("GET", "POST"):
            scopes = API_LEGAL[route.name, method][0]
            for actor in ACTORS:
                for scope in SCOPES if scopes != PUBLIC else ("read",):
                    # A scope the call does not take is refused before the state matters.
                    granted = scopes != PUBLIC and scope in scopes and actor != "anonymous"
                    states = STATES if route.has_request and granted else (None,)
                    if route.has_request and not granted:
                        states = (Status.PENDING,)
                    for state in states:
                        sweep.run(route, method, actor, scope, state)
    assert not sweep.problems, f"{len(sweep.problems)} of {sweep.count}:\n" + "\n".join(
        sweep.problems
    )
    assert sweep.count > len(API_LEGAL) * len(ACTORS)
