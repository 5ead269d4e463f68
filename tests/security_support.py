"""What the security suites share: the URLconf walked into routes, the actors, and
requests in every state.

The routes come from the URLconf itself, so a view added tomorrow is swept by the
matrix, the CSRF test, the header test and the fuzzer without anyone listing it.
A route whose URL has a parameter this module cannot fill fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts_app.models import AccountRequest, Instance
from tests.builders import request_row
from tests.conftest import cast_member
from tests.demo_instances import HEALTHY

VALID_PASSWORD = "Str0ng-Passw0rd"
# Django's own apps, not this dashboard's views.
EXCLUDED_PREFIXES = ("admin/", "i18n/")

Status = AccountRequest.Status


@dataclass(frozen=True)
class Route:
    name: str
    route: str  # the pattern as written, for messages
    params: tuple[str, ...]

    @property
    def has_request(self) -> bool:
        return "pk" in self.params or "id" in self.params

    def url(self, **values) -> str:
        if "pk" in values:
            values.setdefault("id", values["pk"])  # the JSON API names the request `id`
        missing = [param for param in self.params if param not in values]
        if missing:
            raise AssertionError(
                f"The security suites cannot fill {missing} of route {self.route!r}: add a "
                "value for it in tests/security_support.py (PARAM_VALUES)."
            )
        return reverse(self.name, kwargs={param: values[param] for param in self.params})


def walk_routes() -> list[Route]:
    """Every named route of the URLconf but Django's admin, i18n and static files."""
    static_prefix = settings.STATIC_URL.lstrip("/")
    routes: list[Route] = []

    def walk(patterns, prefix: str, namespace: str) -> None:
        for entry in patterns:
            text = prefix + str(entry.pattern)
            if text.startswith(EXCLUDED_PREFIXES) or (
                static_prefix and text.startswith(static_prefix)
            ):
                continue
            if isinstance(entry, URLResolver):
                inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                walk(entry.url_patterns, text, inner)
            elif isinstance(entry, URLPattern):
                if not entry.name:
                    raise AssertionError(f"Route {text!r} has no name: name it.")
                params = tuple(getattr(entry.pattern, "converters", {}) or ()) or tuple(
                    entry.pattern.regex.groupindex
                )
                routes.append(Route(f"{namespace}{entry.name}", text, params))

    walk(get_resolver().url_patterns, "", "")
    return routes


# Values for route parameters other than pk (which is the request under test).
PARAM_VALUES = {"instance_id": HEALTHY, "fmt": "csv", "provider_id": "idp"}

# --- Actors ---------------------------------------------------------------------------

ACTORS = (
    "anonymous",
    "requester",
    "other_requester",
    "approver",
    "approver_requester",
    "auditor",
    "outsider",
    "superuser_requester",
)
# Actors whose request is the one under test; the others look at the requester's.
OWNERS = frozenset({"requester", "approver_requester", "superuser_requester"})


def make_actors(make_user) -> dict[str, object | None]:
    """The actors of ACTORS, from the shared cast (tests/conftest.py)."""
    return {
        actor: None if actor == "anonymous" else cast_member(make_user, actor) for actor in ACTORS
    }


def signed_in(user, **client_options) -> Client:
    client = Client(**client_options)
    if user is not None:
        client.force_login(user)
    return client


# --- Requests in every state ------------------------------------------------------------

STATES = tuple(Status.values)


def requests_by_owner_and_state(actors: dict, instance: Instance) -> dict:
    """{(owner actor, state): request}: one request per owner and state."""
    made = {}
    for owner_index, owner in enumerate(sorted(OWNERS)):
        for state_index, state in enumerate(STATES):
            made[owner, state] = request_row(
                actors[owner], instance, f"m{owner_index}s{state_index}", status=state
            )
    return made


def request_for(actor: str, state: str, made: dict) -> AccountRequest:
    owner = actor if actor in OWNERS else "requester"
    return made[owner, state]


# --- Where a password could come to rest on disk -----------------------------------------


def secret_byte_forms(secret: str) -> set[bytes]:
    """The bytes a secret takes in files: raw (UTF-8, UTF-16 as Chromium's session and
    form-state files write strings), URL-encoded as a form body, HTML- and JSON-escaped."""
    import html
    import json
    from urllib.parse import quote, quote_plus

    texts = {secret, quote_plus(secret), quote(secret, safe=""), html.escape(secret)}
    texts.add(json.dumps(secret)[1:-1])
    forms = set()
    for text in texts:
        forms.add(text.encode())
        forms.add(text.encode("utf-16-le"))
    return forms


def files_holding(directory, secret: str) -> list[str]:
    """Every file under `directory` whose bytes hold the secret in one of its forms."""
    from pathlib import Path

    forms = secret_byte_forms(secret)
    found = []
    for path in Path(directory).rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(form in data for form in forms):
                found.append(str(path.relative_to(directory)))
    return found
