"""CSRF: every route refuses a POST with a missing, wrong or foreign token, form or htmx.

The routes come from the URLconf (tests/security_support.py). The client enforces
CSRF checks as a browser's session would meet them; a positive control with the
right token shows the refusals are about the token and nothing else.
"""

from __future__ import annotations

import secrets

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.views.decorators.csrf import csrf_exempt

from accounts_app.models import AccountRequest, Instance
from tests.builders import request_row
from tests.security_support import (
    PARAM_VALUES,
    make_actors,
    walk_routes,
)

pytestmark = pytest.mark.django_db

CSRF_FAILED = b"CSRF verification failed"
# Called by the chat platforms, which sign each request instead of holding a session.
SIGNED_BY_PLATFORM = ("chat_slack", "chat_feishu")


def csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    # Any page with a form sets the CSRF cookie, as a browser's first visit would.
    client.get("/login/" if user is None else "/")
    assert settings.CSRF_COOKIE_NAME in client.cookies
    return client


def token_of(client: Client) -> str:
    return client.cookies[settings.CSRF_COOKIE_NAME].value


API_CSRF_FAILED = b'"code": "Forbidden.Csrf"'
# Read-only documents of the JSON API: no state to protect, whatever the method.
API_DOCUMENTS = {"api:api-root", "api:openapi-json", "api:openapi-view"}


def csrf_failed(response) -> bool:
    return response.status_code == 403 and (
        CSRF_FAILED in response.content or API_CSRF_FAILED in response.content
    )


def refused(response) -> bool:
    """Refused for the token; the JSON API's routes may refuse the method first (405)."""
    api_route = response.request["PATH_INFO"].startswith("/api/")
    return csrf_failed(response) or (response.status_code == 405 and api_route)


def bad_posts(foreign_token: str) -> dict[str, tuple[dict, dict]]:
    """Name -> (form data, headers) of a POST that must be refused."""
    wrong = secrets.token_urlsafe(24)[:32]
    return {
        "no token": ({}, {}),
        "a wrong token": ({"csrfmiddlewaretoken": wrong}, {}),
        "a malformed token": ({"csrfmiddlewaretoken": "x" * 64}, {}),
        "another session's token": ({"csrfmiddlewaretoken": foreign_token}, {}),
        "htmx without a token": ({}, {"HX-Request": "true"}),
        "htmx with a wrong token": ({}, {"HX-Request": "true", "X-CSRFToken": wrong}),
        "htmx with another session's token": (
            {},
            {"HX-Request": "true", "X-CSRFToken": foreign_token},
        ),
    }


def csrf_sweep(user, foreign_token: str, urls: dict[str, str]) -> list[str]:
    """Routes that accepted a bad POST, and routes whose good POST was refused."""
    problems = []
    for name, url in urls.items():
        client = csrf_client(user)
        for label, (data, headers) in bad_posts(foreign_token).items():
            if not refused(client.post(url, data, headers=headers)):
                problems.append(f"POST {name} with {label} was accepted")
        good = client.post(url, {}, headers={"HX-Request": "true", "X-CSRFToken": token_of(client)})
        if csrf_failed(good):
            problems.append(f"POST {name} with the right token was refused as CSRF")
    return problems


@pytest.fixture
def urls(estate, make_user):
    actors = make_actors(make_user)
    instance = Instance.objects.get(instance_id=PARAM_VALUES["instance_id"])
    account_request = request_row(
        actors["requester"], instance, "csrf_case", status=AccountRequest.Status.PENDING
    )
    routes = {
        route.name: route.url(**PARAM_VALUES, pk=account_request.pk) for route in walk_routes()
    }
    return actors, routes


def test_every_post_route_refuses_missing_wrong_and_foreign_tokens(urls):
    actors, routes = urls
    foreign = token_of(csrf_client(actors["approver"]))
    # The superuser passes every permission check: only the token can stop the POST.
    signed_in_routes = {
        name: url
        for name, url in routes.items()
        if name != "login" and name not in API_DOCUMENTS and name not in SIGNED_BY_PLATFORM
    }
    assert csrf_sweep(actors["superuser_requester"], foreign, signed_in_routes) == []


def test_the_chat_callbacks_trust_the_platforms_signature_never_a_session(urls):
    """CSRF-exempt, so a forged POST riding a staff session must still be refused."""
    actors, routes = urls
    client = csrf_client(actors["superuser_requester"])
    for name in SIGNED_BY_PLATFORM:
        for data, headers in [({}, {}), ({}, {"X-CSRFToken": token_of(client)})]:
            response = client.post(routes[name], data, headers=headers)
            assert response.status_code == 403 and CSRF_FAILED not in response.content


def test_the_sign_in_form_refuses_a_post_without_its_token(urls):
    _, routes = urls
    foreign = token_of(csrf_client(None))
    assert csrf_sweep(None, foreign, {"login": routes["login"]}) == []


def test_the_language_switcher_refuses_a_post_without_its_token(urls):
    actors, _ = urls
    client = csrf_client(actors["requester"])
    assert refused(client.post("/i18n/setlang/", {"language": "zh-hans"}))


def find_pattern(name: str) -> URLPattern:
    def walk(patterns):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                found = walk(entry.url_patterns)
                if found:
                    return found
            elif entry.name == name:
                return entry
        return None

    pattern = walk(get_resolver().url_patterns)
    assert pattern is not None
    return pattern


def test_the_sweep_fails_when_a_view_is_csrf_exempt(urls, monkeypatch):
    """Deliberate regression: a cancel view that forgot CSRF is caught."""
    actors, routes = urls
    pattern = find_pattern("request_cancel")
    monkeypatch.setattr(pattern, "callback", csrf_exempt(pattern.callback))
    foreign = token_of(csrf_client(actors["approver"]))
    problems = csrf_sweep(
        actors["requester"], foreign, {"request_cancel": routes["request_cancel"]}
    )
    assert "POST request_cancel with no token was accepted" in problems
    assert "POST request_cancel with htmx with another session's token was accepted" in problems
