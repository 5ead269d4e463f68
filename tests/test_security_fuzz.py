"""Bad input everywhere: random text, huge values, NUL bytes, odd Unicode and wrong types.

Every route of the URLconf gets random query strings and bodies, with its own form's
field names mixed in; every URL parameter gets random values. The answer is always a
page, a redirect or a 4xx, never a 500, and no request, decision, instance or
preference changes (what a refused input may write is the audit log's record of the
refusal, and django-axes' count of failed sign-ins).
"""

from __future__ import annotations

import json
import zoneinfo
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from accounts_app.models import AccountRequest, Decision, Instance, UserPreference
from tests.builders import request_row
from tests.security_support import (
    PARAM_VALUES,
    make_actors,
    walk_routes,
)

pytestmark = pytest.mark.django_db

Status = AccountRequest.Status
ROUTES = {route.name: route for route in walk_routes()}
EXAMPLES = 25

# The fields each route reads, so that random values reach its form and not only
# unknown keys. A route missing here is still fuzzed, with random keys.
FIELDS = {
    "login": ["username", "password", "next"],
    "reauth": ["password", "next"],
    "preferences": ["time_zone"],
    "request_new": [
        "instance_id",
        "account_name",
        "account_privilege",
        "account_description",
        "account_type",
        "justification",
        "copy",
    ],
    "request_preflight": ["instance_id", "account_name", "account_privilege"],
    "request_execute": ["account_password", "account_password_confirm"],
    "request_approve": ["comment"],
    "request_reject": ["comment"],
    "audit": [
        "date_from",
        "date_to",
        "actor",
        "action",
        "instance_id",
        "account_name",
        "outcome",
        "q",
        "size",
        "before",
        "after",
    ],
    "audit_export": ["date_from", "date_to", "actor", "action", "q", "size", "before"],
    "created_accounts": ["before"],
    "instances": ["q", "region", "engine", "architecture", "status", "gone", "page"],
    "dashboard": [],
}

# Who fuzzes each route: someone who gets past its permission check, so that the
# input reaches the code behind it; the superuser unless said otherwise.
ACTOR = {
    "login": "anonymous",
    "healthz": "anonymous",
    # The superuser is staff, and a sync writes the inventory whatever the input.
    "instance_sync": "approver",
    "request_approve": "approver",
    "request_reject": "approver",
}

text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)
odd = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "%00",
        "\u202eevil",
        "\ufeff",
        "²",
        "٣",
        "𝟘𝟙",
        "Ⅻ",
        "e\u0301",
        "\U0001f600",
        "null",
        "None",
        "[]",
        "{}",
        "-1",
        "0",
        "1e309",
        "NaN",
        "99999999999999999999999999",
        "../../etc/passwd",
        "<script>alert(1)</script>",
        "' OR '1'='1",
        "2024-02-30",
        "UTC",
        "r-bp1ord5x0c9kq2m7wa",
        "RoleRepl",
    ]
)
huge = st.sampled_from(["x" * 70_000, "é" * 40_000, "9" * 5_000, "a\x00" * 10_000])
number = st.integers(min_value=-(2**70), max_value=2**70).map(str)
scalar = st.one_of(text, odd, number, huge, text.map(lambda s: s + "\x00"))
# A list is a repeated field: the wrong type for every single-valued field.
value = st.one_of(scalar, st.lists(scalar, min_size=2, max_size=3))


def payload(route_name: str):
    names = FIELDS.get(route_name, [])
    keys = st.one_of(st.sampled_from(names), text.filter(bool)) if names else text.filter(bool)
    return st.dictionaries(keys, value, max_size=6)


def snapshot() -> tuple:
    return (
        list(AccountRequest.objects.order_by("pk").values()),
        list(Decision.objects.order_by("pk").values()),
        list(Instance.objects.order_by("pk").values_list("pk", "instance_id", "is_gone")),
        list(UserPreference.objects.order_by("pk").values()),
    )


def valid_time_zone(data: dict) -> bool:
    zone = data.get("time_zone")
    return isinstance(zone, str) and zone in zoneinfo.available_timezones()


@pytest.fixture
def world(estate, make_user):
    actors = make_actors(make_user)
    instance = Instance.objects.get(instance_id=PARAM_VALUES["instance_id"])
    superuser = actors["superuser_requester"]
    # States in which no input can make the workflow move on: a pending request the
    # requester cannot execute, a finished one nobody can decide, cancel or reconcile.
    pending = request_row(superuser, instance, "fuzz_pending", status=Status.PENDING)
    finished = request_row(actors["requester"], instance, "fuzz_done", status=Status.CREATED)
    targets = {
        "request_execute": pending,
        "request_approve": finished,
        "request_reject": finished,
    }
    clients = {}
    for name, user in actors.items():
        client = Client()
        if user is not None:
            client.force_login(user)
        clients[name] = client
    return actors, clients, targets, finished


def url_for(route, targets, default_request, **overrides) -> str:
    account_request = targets.get(route.name, default_request)
    values = {**PARAM_VALUES, "pk": account_request.pk, **overrides}
    return route.url(**values)


def send(client: Client, method: str, url: str, data: dict, encoding: str):
    if method == "GET":
        return client.get(url, data)
    if encoding == "json":
        return client.post(url, json.dumps(data), content_type="application/json")
    if encoding == "urlencoded":
        return client.post(
            url, urlencode(data, doseq=True), content_type="application/x-www-form-urlencoded"
        )
    if encoding == "files":
        files = {key: SimpleUploadedFile("f.txt", str(val).encode()) for key, val in data.items()}
        return client.post(url, files)
    return client.post(url, data)


def assert_harmless(client, method, url, data, encoding, route_name) -> None:
    before = snapshot()
    response = send(client, method, url, data, encoding)
    assert response.status_code < 500, (method, url, data)
    after = snapshot()
    if route_name == "preferences" and method == "POST" and valid_time_zone(data):
        return  # a real time zone is a legitimate change
    assert after == before, f"{method} {url} with {data!r} wrote something"


def fuzz_route(world, route_name: str, phases=tuple(Phase)) -> None:
    actors, clients, targets, finished = world
    route = ROUTES[route_name]
    actor = ACTOR.get(route_name, "superuser_requester")
    url = url_for(route, targets, finished)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=phases,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        method=st.sampled_from(["GET", "POST"]),
        data=payload(route_name),
        encoding=st.sampled_from(["multipart", "urlencoded", "json", "files"]),
    )
    def fuzz(method, data, encoding):
        client = clients[actor]
        if route_name == "logout":
            client = Client()
            client.force_login(actors[actor])
        assert_harmless(client, method, url, data, encoding, route_name)

    fuzz()


@pytest.mark.parametrize("route_name", sorted(ROUTES))
def test_random_input_to_every_route_is_refused_cleanly(world, route_name):
    fuzz_route(world, route_name)


@pytest.mark.parametrize(
    ("route_name", "param", "values"),
    [
        ("request_detail", "pk", st.integers(min_value=0, max_value=2**80)),
        ("request_execute", "pk", st.integers(min_value=0, max_value=2**80)),
        ("instance_detail", "instance_id", text.filter(lambda s: s and "/" not in s)),
        ("instance_detail", "instance_id", odd.filter(lambda s: s and "/" not in s)),
        ("audit_export", "fmt", text.filter(lambda s: s and "/" not in s)),
    ],
)
def test_random_url_parameters_are_refused_cleanly(world, route_name, param, values):
    _, clients, targets, finished = world
    route = ROUTES[route_name]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(value=values, method=st.sampled_from(["GET", "POST"]))
    def fuzz(value, method):
        url = url_for(route, targets, finished, **{param: value})
        assert_harmless(clients["superuser_requester"], method, url, {}, "multipart", route_name)

    fuzz()


def test_a_body_over_the_upload_limit_is_a_400(world):
    _, clients, _, _ = world
    response = clients["superuser_requester"].post(
        ROUTES["request_new"].url(), {"justification": "x" * 3_000_000}
    )
    assert response.status_code == 400


def test_the_fuzzer_finds_a_view_that_crashes_on_odd_input(world, monkeypatch):
    """Deliberate regression: a form that trusts its input is caught."""
    from accounts_app.forms.requests import DecisionForm

    def fragile_clean(self):
        return int(self.data.get("comment", "no number"))

    monkeypatch.setattr(DecisionForm, "clean", fragile_clean, raising=False)
    with pytest.raises(ValueError, match="invalid literal for int"):
        # Without shrinking: finding the crash is the point, not its smallest input.
        fuzz_route(world, "request_approve", phases=(Phase.generate,))
