from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from accounts_app import roles

DEMO_TEST_PASSWORD = "Correct-Horse-7"

# The suite runs on busy machines (CI, several suites at once): Hypothesis's clocks would
# then fail a property for the machine's sake, never for the code's.
hypothesis_settings.register_profile(
    "busy_machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("busy_machine")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Let the test flush empty the append-only audit table (migration 0003)."""
    from accounts_app.audit.testing import permit_test_flush

    with django_db_blocker.unblock():
        permit_test_flush()


@pytest.fixture(autouse=True)
def site_language():
    """Each test starts in the site's language. Django leaves the language of the last
    request active in the thread, so a test of the Chinese pages would otherwise turn
    the messages of every later test in that thread into Chinese."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def rules_spec_built_by_each_test():
    """Each test builds the browser's rules spec (rules.browser_spec) itself. The spec is
    cached per language and process: kept from an earlier test, or from the process a
    mutation run forks each mutant from, it would hide a change to the code building it."""
    from accounts_app import rules

    rules._spec_for.cache_clear()
    rules._spec_script_for.cache_clear()


@pytest.fixture(autouse=True)
def live_server_on_a_file_database(request, tmp_path):
    """Browser tests on SQLite run against a file copy of the test database.

    On the test run's in-memory SQLite, pytest-django hands the live server the test's one
    connection (an in-memory database lives in its connection), and every request thread
    of the server shares it: two requests at once (a page and its htmx pre-flight, a run
    and a poll) interleave on one connection, and SQLite answers "bad parameter or other
    API misuse" or reads a half-written row. So, for a test with a live server, the
    database is copied to a file (WAL, as `make run` uses) and each thread gets a
    connection of its own, readers and the writer passing each other as on PostgreSQL;
    the in-memory database is left as it was, open, for the tests after."""
    if "live_server" not in request.fixturenames:
        yield
        return
    import sqlite3

    from django.db import connections

    request.getfixturevalue("transactional_db")
    live_server = request.getfixturevalue("live_server")
    memory = connections["default"]
    if memory.vendor != "sqlite" or not memory.is_in_memory_db():
        yield
        return
    path = tmp_path / "test_live_server.sqlite3"  # a test database, by its name too
    memory.ensure_connection()
    with sqlite3.connect(path) as copy:
        memory.connection.backup(copy)
    server = live_server.thread.httpd
    handler_settings = connections.settings
    connections.settings = {**handler_settings, "default": {**memory.settings_dict, "NAME": path}}
    server.connections_override, override = {}, server.connections_override
    connections["default"] = connections.create_connection("default")
    try:
        yield
    finally:
        connections["default"].close()
        connections["default"] = memory
        connections.settings = handler_settings
        server.connections_override = override


@pytest.fixture
def make_user(django_user_model):
    # A serialized_rollback test ends with a flush that skips post_migrate, so
    # the permission rows may be gone: recreate them before the groups.
    create_permissions(apps.get_app_config("accounts_app"), verbosity=0)
    roles.ensure_groups()

    def make(username: str, *groups: str, superuser: bool = False):
        user = django_user_model.objects.create_user(
            username=username,
            password=DEMO_TEST_PASSWORD,
            is_superuser=superuser,
            is_staff=superuser,
        )
        for name in groups:
            user.groups.add(Group.objects.get(name=name))
        return user

    return make


# The named actors every test shares: part -> (username, groups, superuser).
CAST = {
    "requester": ("alice", (roles.REQUESTERS,), False),
    "other_requester": ("dave", (roles.REQUESTERS,), False),
    "approver": ("bob", (roles.APPROVERS,), False),
    "second_approver": ("erin", (roles.APPROVERS,), False),
    "approver_requester": ("frank", (roles.APPROVERS,), False),
    "auditor": ("carol", (roles.AUDITORS,), False),
    "outsider": ("mallory", (), False),
    "superuser_requester": ("root", (), True),
}


def cast_member(make_user, part: str):
    username, groups, superuser = CAST[part]
    return make_user(username, *groups, superuser=superuser)


def actor_fixture(part: str):
    """The fixture of one member of the cast, named after the part."""

    def actor(make_user):
        return cast_member(make_user, part)

    return pytest.fixture(actor, name=part)


requester = actor_fixture("requester")
other_requester = actor_fixture("other_requester")
approver = actor_fixture("approver")
second_approver = actor_fixture("second_approver")
auditor = actor_fixture("auditor")
outsider = actor_fixture("outsider")


@pytest.fixture
def kvstore(settings, simulator):
    """Point the dashboard's client at the local simulator."""
    settings.KVSTORE_ENDPOINT = simulator.endpoint
    settings.ALIBABA_CLOUD_ACCESS_KEY_ID = simulator.access_key_id
    settings.ALIBABA_CLOUD_ACCESS_KEY_SECRET = simulator.access_key_secret
    return simulator


@pytest.fixture
def estate(kvstore, db):
    """The simulator's demo estate, synced into the Instance table."""
    from accounts_app.audit import Origin
    from accounts_app.services.inventory import sync_instances

    report = sync_instances(origin=Origin.system("test"))
    assert not report.failures, report.failures
    return kvstore


def sign_in(page, base_url: str, username: str) -> None:
    """Sign in through the real login page in the browser (Playwright)."""
    from playwright.sync_api import expect

    page.context.clear_cookies()
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def choose_instance(page, instance_id: str, label: str = "Instance") -> None:
    """Type part of the ID into the instance picker, then click the suggestion (Playwright)."""
    from playwright.sync_api import expect

    # htmx and app.js bind the input once the page has loaded: typing earlier asks nothing.
    page.wait_for_load_state()
    box = page.get_by_role("combobox", name=label, exact=True)
    box.fill(instance_id[-8:])
    option = page.locator(f'[role="option"][data-value="{instance_id}"]')
    expect(option).to_be_visible()
    option.click()
    expect(box).to_have_value(instance_id)


def empty_instance(simulator, instance_id: str):
    """A healthy 6.0 instance with no account, on the simulator and in the inventory.

    One per trial or scenario, so that many new accounts never meet the
    18-account limit of a demo instance.
    """
    from tests.builders import instance_row

    simulator.add_instance(InstanceId=instance_id, RegionId="cn-hangzhou", EngineVersion="6.0")
    return instance_row(instance_id, account_count=0)
