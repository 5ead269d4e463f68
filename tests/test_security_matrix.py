"""Who may do what: every route of the URLconf x every actor x every request state x GET/POST.

The table below is the whole authorization policy, written out. A route missing from
it fails the test, so a new view cannot slip in unreviewed. Each combination runs in
a savepoint that is rolled back, so every one starts from the same rows.

- A refusal is a 403 and a PERMISSION_DENIED audit event (or, for the anonymous
  visitor, a redirect to the sign-in page).
- A permitted combination gets its answer, and changes the request only as the
  workflow allows (TRANSITIONS).
- A GET changes no AccountRequest or Decision row.
"""

from __future__ import annotations

from copy import deepcopy

import pytest
from django.db import transaction
from django.urls import reverse

from accounts_app import policy
from accounts_app.models import AccountRequest, AuditEvent, Decision, Instance
from tests.builders import instance_row
from tests.security_support import (
    ACTORS,
    OWNERS,
    PARAM_VALUES,
    STATES,
    VALID_PASSWORD,
    make_actors,
    request_for,
    requests_by_owner_and_state,
    signed_in,
    walk_routes,
)

pytestmark = pytest.mark.django_db

Status = AccountRequest.Status

EVERYONE = frozenset(ACTORS)
SIGNED_IN = EVERYONE - {"anonymous"}
REQUESTERS = frozenset(
    {"requester", "other_requester", "approver", "approver_requester", "superuser_requester"}
)
APPROVERS = frozenset({"approver", "approver_requester", "superuser_requester"})
VIEWERS = frozenset({"approver", "approver_requester", "auditor", "superuser_requester"})
STAFF = frozenset({"superuser_requester"})
# Approvers deciding on someone else's request: four eyes, superusers included.
DECIDERS = APPROVERS - OWNERS

OK = "ok"  # a 2xx, or a redirect that is not to the sign-in page
# Routes that no session opens: the anonymous visitor is refused like everyone else.
VERIFIED_BY_SIGNATURE = {"chat_slack", "chat_feishu"}

# (route, method) -> (actors who get past authorization, what they get).
# Every other signed-in actor gets 403 and an audit event; the anonymous visitor
# gets the sign-in page.
LEGAL: dict[tuple[str, str], tuple[frozenset[str], object]] = {
    ("dashboard", "GET"): (SIGNED_IN, OK),
    ("dashboard", "POST"): (SIGNED_IN, OK),
    ("healthz", "GET"): (EVERYONE, OK),
    ("healthz", "POST"): (EVERYONE, 405),
    ("livez", "GET"): (EVERYONE, OK),
    ("livez", "POST"): (EVERYONE, 405),
    ("login", "GET"): (EVERYONE, OK),
    ("login", "POST"): (EVERYONE, OK),
    ("logout", "GET"): (SIGNED_IN, 405),
    ("logout", "POST"): (SIGNED_IN, OK),
    ("login_break_glass", "GET"): (EVERYONE, OK),
    ("login_break_glass", "POST"): (EVERYONE, OK),
    # With no IdP configured (OIDC_ISSUER unset, as here) there is no provider to
    # sign in with; tests/test_sso.py sweeps them with the real provider.
    ("openid_connect_login", "GET"): (EVERYONE, 404),
    ("openid_connect_login", "POST"): (EVERYONE, 404),
    ("openid_connect_callback", "GET"): (EVERYONE, 404),
    ("openid_connect_callback", "POST"): (EVERYONE, 404),
    ("socialaccount_login_cancelled", "GET"): (EVERYONE, OK),
    ("socialaccount_login_cancelled", "POST"): (EVERYONE, OK),
    ("no_role", "GET"): (SIGNED_IN, OK),
    ("no_role", "POST"): (SIGNED_IN, 405),
    ("two_factor", "GET"): (SIGNED_IN, OK),
    ("two_factor", "POST"): (SIGNED_IN, OK),
    ("reauth", "GET"): (SIGNED_IN, OK),
    ("reauth", "POST"): (SIGNED_IN, OK),
    ("preferences", "GET"): (SIGNED_IN, OK),
    ("preferences", "POST"): (SIGNED_IN, OK),
    ("api_tokens", "GET"): (SIGNED_IN, OK),
    ("api_tokens", "POST"): (SIGNED_IN, OK),
    ("api_token_revoke", "GET"): (SIGNED_IN, 405),
    ("api_token_revoke", "POST"): (SIGNED_IN, OK),
    ("chat_link", "GET"): (SIGNED_IN, 405),
    ("chat_link", "POST"): (SIGNED_IN, OK),
    # Chat platforms' callbacks: public, but an unsigned POST is refused and audited
    # whoever sends it (VERIFIED_BY_SIGNATURE).
    ("chat_slack", "GET"): (EVERYONE, 405),
    ("chat_slack", "POST"): (frozenset(), 403),
    ("chat_feishu", "GET"): (EVERYONE, 405),
    ("chat_feishu", "POST"): (frozenset(), 403),
    ("request_new", "GET"): (REQUESTERS, OK),
    ("request_new", "POST"): (REQUESTERS, OK),
    ("request_preflight", "GET"): (REQUESTERS, OK),
    ("request_preflight", "POST"): (REQUESTERS, 405),
    ("request_detail", "GET"): (OWNERS | VIEWERS, OK),
    ("request_detail", "POST"): (OWNERS | VIEWERS, OK),
    ("request_approve", "GET"): (APPROVERS, 405),
    ("request_approve", "POST"): (DECIDERS, OK),
    ("request_reject", "GET"): (APPROVERS, 405),
    ("request_reject", "POST"): (DECIDERS, OK),
    ("request_cancel", "GET"): (SIGNED_IN, 405),
    ("request_cancel", "POST"): (OWNERS, OK),
    ("request_execute", "GET"): (OWNERS, OK),
    ("request_execute", "POST"): (OWNERS, OK),
    ("request_execute_result", "GET"): (OWNERS, OK),
    ("request_execute_result", "POST"): (SIGNED_IN, 405),
    ("request_reconcile", "GET"): (SIGNED_IN, 405),
    ("request_reconcile", "POST"): (OWNERS | APPROVERS, OK),
    ("request_list", "GET"): (SIGNED_IN, OK),
    ("request_list", "POST"): (SIGNED_IN, 405),
    ("fleet_new", "GET"): (REQUESTERS, OK),
    ("fleet_new", "POST"): (REQUESTERS, OK),
    ("fleet_progress", "GET"): (OWNERS | VIEWERS, OK),
    ("fleet_progress", "POST"): (SIGNED_IN, 405),
    ("fleet_execute", "GET"): (OWNERS, OK),
    ("fleet_execute", "POST"): (OWNERS, OK),
    ("fleet_execute_result", "GET"): (OWNERS, OK),
    ("fleet_execute_result", "POST"): (SIGNED_IN, 405),
    ("approvals", "GET"): (APPROVERS, OK),
    ("approvals", "POST"): (APPROVERS, OK),
    ("instances", "GET"): (SIGNED_IN, OK),
    ("instances", "POST"): (SIGNED_IN, 405),
    ("instance_choices", "GET"): (SIGNED_IN, OK),
    ("instance_choices", "POST"): (SIGNED_IN, 405),
    ("instance_sync", "GET"): (SIGNED_IN, 405),
    ("instance_sync", "POST"): (STAFF, OK),
    ("sync_progress", "GET"): (SIGNED_IN, OK),
    ("sync_progress", "POST"): (SIGNED_IN, 405),
    ("instance_detail", "GET"): (SIGNED_IN, OK),
    ("instance_detail", "POST"): (SIGNED_IN, 405),
    ("instance_accounts_refresh", "GET"): (SIGNED_IN, 405),
    ("instance_accounts_refresh", "POST"): (APPROVERS | STAFF, OK),
    ("audit", "GET"): (VIEWERS, OK),
    ("audit", "POST"): (VIEWERS, 405),
    ("audit_export", "GET"): (VIEWERS, OK),
    ("audit_export", "POST"): (VIEWERS, 405),
    ("created_accounts", "GET"): (VIEWERS, OK),
    ("created_accounts", "POST"): (VIEWERS, 405),
    ("created_accounts_export", "GET"): (VIEWERS, OK),
    ("created_accounts_export", "POST"): (VIEWERS, 405),
    ("drift", "GET"): (VIEWERS, OK),
    ("drift", "POST"): (VIEWERS, 405),
}

# What a permitted POST does to the request, by state; any other state stays as it was.
TRANSITIONS = {
    "request_approve": {Status.PENDING: Status.APPROVED},
    "request_reject": {Status.PENDING: Status.REJECTED},
    "request_cancel": {Status.PENDING: Status.CANCELLED, Status.APPROVED: Status.CANCELLED},
    "request_execute": {Status.APPROVED: Status.CREATED},
    # The simulator has no such account: nothing was created, the approval stands.
    "request_reconcile": {Status.NEEDS_RECONCILIATION: Status.APPROVED},
}

POST_DATA = {
    "request_approve": {"comment": "fine"},
    "request_reject": {"comment": "no"},
    "request_execute": {
        "account_password": VALID_PASSWORD,
        "account_password_confirm": VALID_PASSWORD,
    },
}


def rows_snapshot() -> tuple[list, list]:
    return (
        list(AccountRequest.objects.order_by("pk").values()),
        list(Decision.objects.order_by("pk").values()),
    )


def denied_events() -> int:
    return AuditEvent.objects.filter(action=AuditEvent.Action.PERMISSION_DENIED).count()


class Sweep:
    """Runs one combination in a rolled-back savepoint and notes what went wrong."""

    def __init__(self, actors: dict, clients: dict) -> None:
        self.actors = actors
        self.clients = clients
        self.cookies = {name: deepcopy(client.cookies) for name, client in clients.items()}
        self.problems: list[str] = []
        self.count = 0

    def run(self, route, method: str, actor: str, state: str | None, made: dict) -> None:
        allowed, answer = LEGAL[route.name, method]
        account_request = request_for(actor, state, made) if state else None
        url = route.url(**PARAM_VALUES, **({"pk": account_request.pk} if account_request else {}))
        client = self.clients[actor]
        label = f"{method} {route.name} as {actor}" + (f" on a {state} request" if state else "")
        with transaction.atomic():
            before = rows_snapshot() if method == "GET" else None
            denied_before = denied_events()
            if method == "GET":
                response = client.get(url)
            else:
                response = client.post(url, POST_DATA.get(route.name, {}))
            self.count += 1
            self._check_answer(label, response, actor, allowed, answer, denied_before, route.name)
            if method == "GET" and rows_snapshot() != before:
                self.problems.append(f"{label}: a GET changed AccountRequest or Decision rows")
            if account_request is not None and method == "POST":
                self._check_transition(label, route.name, actor, allowed, answer, account_request)
            transaction.set_rollback(True)
        client.cookies = deepcopy(self.cookies[actor])

    def _check_answer(
        self, label, response, actor, allowed, answer, denied_before, route_name
    ) -> None:
        status = response.status_code
        location = response.get("Location", "")
        new_denials = denied_events() - denied_before
        # The sign-in page asked for a page: what LoginRequiredMiddleware answers.
        to_login = status == 302 and location.startswith(reverse("login") + "?next=")
        if actor not in allowed:
            if actor == "anonymous" and route_name not in VERIFIED_BY_SIGNATURE:
                if not to_login:
                    self.problems.append(f"{label}: {status} {location}, not the sign-in page")
            elif status != 403 or new_denials != 1:
                self.problems.append(
                    f"{label}: expected 403 with one audit event, got {status} with {new_denials}"
                )
            return
        if new_denials:
            self.problems.append(f"{label}: permitted, yet a PERMISSION_DENIED event was written")
        if answer == OK:
            if not (200 <= status < 400) or to_login:
                self.problems.append(f"{label}: expected success, got {status} {location}")
        elif status != answer:
            self.problems.append(f"{label}: expected {answer}, got {status}")

    def _check_transition(self, label, name, actor, allowed, answer, account_request) -> None:
        was = account_request.status
        now = AccountRequest.objects.get(pk=account_request.pk).status
        expected = was
        if actor in allowed and answer == OK:
            expected = TRANSITIONS.get(name, {}).get(was, was)
        if now != expected:
            self.problems.append(f"{label}: the request went {was} -> {now}, expected {expected}")


def page_routes():
    """The pages; the JSON API has a matrix of its own (tests/test_api_matrix.py)."""
    return [route for route in walk_routes() if not route.name.startswith("api:")]


def test_the_table_covers_every_route_of_the_urlconf():
    names = {route.name for route in page_routes()}
    missing = sorted(f"{name} {method}" for name in names for method in ("GET", "POST"))
    missing = [entry for entry in missing if tuple(entry.split()) not in LEGAL]
    assert not missing, f"Add these routes to LEGAL in {__file__}: {missing}"
    stale = sorted({name for name, _ in LEGAL} - names)
    assert not stale, f"LEGAL lists routes the URLconf no longer has: {stale}"


def test_every_actor_on_every_route_in_every_state_gets_only_what_the_table_allows(
    estate, make_user
):
    actors = make_actors(make_user)
    made = requests_by_owner_and_state(
        actors, Instance.objects.get(instance_id=PARAM_VALUES["instance_id"])
    )
    clients = {name: signed_in(user) for name, user in actors.items()}
    sweep = Sweep(actors, clients)
    for route in page_routes():
        for method in ("GET", "POST"):
            for actor in ACTORS:
                for state in STATES if route.has_request else (None,):
                    sweep.run(route, method, actor, state, made)
    assert not sweep.problems, f"{len(sweep.problems)} of {sweep.count}:\n" + "\n".join(
        sweep.problems
    )
    assert sweep.count >= len(LEGAL) * len(ACTORS)


def test_the_sweep_fails_when_a_view_forgets_its_permission_check(estate, make_user, monkeypatch):
    """Deliberate regression: the approvals page without its role check is caught."""
    from accounts_app import roles

    actors = make_actors(make_user)
    made = requests_by_owner_and_state(
        actors, Instance.objects.get(instance_id=PARAM_VALUES["instance_id"])
    )
    monkeypatch.setattr(roles, "deny", lambda request, perm: None)
    sweep = Sweep(actors, {"outsider": signed_in(actors["outsider"])})
    route = next(route for route in walk_routes() if route.name == "approvals")
    sweep.run(route, "GET", "outsider", None, made)
    assert sweep.problems == [
        "GET approvals as outsider: expected 403 with one audit event, got 200 with 0"
    ]


# The policy's answers, question by question, against the same table: what a
# button or a list shows is what the route then allows.
POLICY_ON_A_REQUEST = {
    policy.may_see_request: "request_detail",
    policy.may_decide: "request_approve",
    policy.may_cancel: "request_cancel",
    policy.may_execute: "request_execute",
    policy.may_reconcile: "request_reconcile",
}
POLICY_ON_A_USER = {
    policy.may_request: ("request_new", "GET"),
    policy.may_approve: ("approvals", "GET"),
    policy.may_view_everything: ("audit", "GET"),
    policy.may_sync_inventory: ("instance_sync", "POST"),
    policy.may_refresh_accounts: ("instance_accounts_refresh", "POST"),
}


def _allowed_in_state(route: str, actor: str, state: str) -> bool:
    method = "GET" if route == "request_detail" else "POST"
    allowed, _answer = LEGAL[route, method]
    return actor in allowed and (route not in TRANSITIONS or state in TRANSITIONS[route])


def test_the_policy_answers_as_the_table_allows(make_user):
    actors = make_actors(make_user)
    instance = instance_row(PARAM_VALUES["instance_id"])
    made = requests_by_owner_and_state(actors, instance)
    problems = []
    for actor, user in actors.items():
        if user is None:
            continue
        for question, (route, method) in POLICY_ON_A_USER.items():
            if question(user) != (actor in LEGAL[route, method][0]):
                problems.append(f"{question.__name__}({actor})")
        for state in STATES:
            account_request = request_for(actor, state, made)
            for question, route in POLICY_ON_A_REQUEST.items():
                if question(user, account_request) != _allowed_in_state(route, actor, state):
                    problems.append(f"{question.__name__}({actor}, {state})")
            pk = account_request.pk
            everyone = AccountRequest.objects.all()
            if policy.visible_requests(user, everyone).filter(pk=pk).exists() != (
                policy.may_see_request(user, account_request)
            ):
                problems.append(f"visible_requests({actor}, {state})")
            if policy.decidable_requests(user, everyone).filter(pk=pk).exists() != (
                policy.may_decide(user, account_request)
            ):
                problems.append(f"decidable_requests({actor}, {state})")
    assert not problems, problems


# --- Admin actions --------------------------------------------------------------------
# Django's admin changes who may do what. Only staff reach it (the superuser of the
# cast); every change it makes is an audit event by that actor (tests/test_admin_audit.py
# covers the content of each).

ADMIN_ACTIONS = {
    "lower a policy": lambda actors, ids: (
        reverse("admin:accounts_app_approvalpolicy_change", args=[ids["policy"]]),
        {"account_privilege": "RoleRepl", "approvals_required": "1"},
        AuditEvent.Action.POLICY_CHANGED,
    ),
    "create a user": lambda actors, ids: (
        reverse("admin:auth_user_add"),
        {
            "username": "newcomer",
            "password1": "Correct-Horse-8x",
            "password2": "Correct-Horse-8x",
            "usable_password": "true",
        },
        AuditEvent.Action.USER_CHANGED,
    ),
    "create a group": lambda actors, ids: (
        reverse("admin:auth_group_add"),
        {"name": "Shadow approvers", "permissions": [ids["approve_perm"]]},
        AuditEvent.Action.GROUP_CHANGED,
    ),
    "delete a policy": lambda actors, ids: (
        reverse("admin:accounts_app_approvalpolicy_delete", args=[ids["policy"]]),
        {"post": "yes"},
        AuditEvent.Action.POLICY_CHANGED,
    ),
}
ADMINS = STAFF


@pytest.mark.parametrize("action", sorted(ADMIN_ACTIONS))
def test_only_staff_change_users_roles_and_policies_and_each_change_is_audited(make_user, action):
    from django.contrib.auth.models import Permission

    from accounts_app.models import ApprovalPolicy

    actors = make_actors(make_user)
    ids = {
        "policy": ApprovalPolicy.objects.get(account_privilege="RoleRepl").pk,
        "approve_perm": Permission.objects.get(codename="approve_request").pk,
    }
    for actor in ACTORS:
        url, data, audited = ADMIN_ACTIONS[action](actors, ids)
        with transaction.atomic():
            before = AuditEvent.objects.filter(action=audited).count()
            response = signed_in(actors[actor]).post(url, data)
            after = AuditEvent.objects.filter(action=audited)
            if actor in ADMINS:
                assert response.status_code == 302, (actor, action, response.status_code)
                assert "/login/" not in response["Location"], (actor, action)
                assert after.count() > before, (actor, action)
                assert after.order_by("-seq").first().actor == actors[actor]
            else:
                # Not staff: the admin's sign-in page, and nothing changed.
                assert response.status_code in (302, 403), (actor, action)
                if response.status_code == 302:
                    assert "login" in response["Location"], (actor, action)
                assert after.count() == before, (actor, action)
            transaction.set_rollback(True)
