"""Sessions and sign-in: fixation, idle timeout, absolute lifetime, re-authentication,
lockout after repeated failures, and which client address a lockout is keyed on.

Time is moved, not waited for: the `clock` fixture shifts Django's timezone.now()
(sessions, axes, the audit log) and the time.time() of the middleware and the
re-authentication module together.
"""

from __future__ import annotations

import time
import types
from datetime import timedelta

import axes.attempts
import axes.handlers.proxy
import pytest
from django.contrib.sessions.models import Session
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts_app import lockout, middleware, reauth
from accounts_app.audit.messages import event_text
from accounts_app.models import AccountRequest, AuditEvent
from tests.builders import approved_request
from tests.conftest import DEMO_TEST_PASSWORD

pytestmark = pytest.mark.django_db

PASSWORD = "Str0ng-Passw0rd"
LOGIN_FAILED = AuditEvent.Action.LOGIN_FAILED


class MovedClock:
    def __init__(self, monkeypatch) -> None:
        self.offset = 0.0
        real_now, real_time = timezone.now, time.time
        moved_time = types.SimpleNamespace(time=lambda: real_time() + self.offset)
        moved_now = lambda: real_now() + timedelta(seconds=self.offset)  # noqa: E731
        monkeypatch.setattr(timezone, "now", moved_now)
        # django-axes imported now() by name.
        monkeypatch.setattr(axes.attempts, "now", moved_now)
        monkeypatch.setattr(axes.handlers.proxy, "now", moved_now)
        monkeypatch.setattr(middleware, "time", moved_time)
        monkeypatch.setattr(reauth, "time", moved_time)

    def advance(self, **delta) -> None:
        self.offset += timedelta(**delta).total_seconds()


@pytest.fixture
def clock(monkeypatch) -> MovedClock:
    return MovedClock(monkeypatch)


def sign_in(client: Client, user, password: str = DEMO_TEST_PASSWORD, **extra):
    return client.post(reverse("login"), {"username": user.username, "password": password}, **extra)


def is_sign_in_page(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- Session keys and lifetimes ---------------------------------------------------------


def test_signing_in_gives_a_new_session_key(requester):
    client = Client()
    session = client.session
    session["planted"] = "by someone else"
    session.save()
    planted = session.session_key
    client.cookies["sessionid"] = planted

    assert sign_in(client, requester).status_code == 302
    assert client.cookies["sessionid"].value != planted
    assert not Session.objects.filter(session_key=planted).exists()


def test_an_idle_session_ends_after_thirty_minutes(requester, clock):
    client = Client()
    sign_in(client, requester)
    clock.advance(minutes=29)
    assert client.get(reverse("dashboard")).status_code == 200
    clock.advance(minutes=29)
    assert client.get(reverse("dashboard")).status_code == 200
    clock.advance(minutes=31)
    assert is_sign_in_page(client.get(reverse("dashboard")))
    assert is_sign_in_page(client.get(reverse("dashboard")))


def test_an_active_session_still_ends_twelve_hours_after_sign_in(requester, clock):
    client = Client()
    sign_in(client, requester)
    key = client.cookies["sessionid"].value
    expires = Session.objects.get(session_key=key).expire_date
    for _ in range(11 * 60 // 25):
        clock.advance(minutes=25)
        response = client.get(reverse("dashboard"))
        assert response.status_code == 200
    # The idle timeout rewrote the session every 25 minutes; its end stayed put.
    assert Session.objects.get(session_key=key).expire_date == expires
    clock.advance(minutes=25)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert int(response.cookies["sessionid"]["max-age"]) < 60 * 60
    clock.advance(minutes=40)
    assert is_sign_in_page(client.get(reverse("dashboard")))


def test_without_a_pinned_expiry_the_session_would_slide(requester, clock, monkeypatch):
    """Deliberate regression: what the lifetime test catches if sign-in stops pinning."""
    monkeypatch.setattr(
        reauth, "mark_signed_in", lambda request: request.session.__setitem__("x", 1)
    )
    client = Client()
    sign_in(client, requester)
    key = client.cookies["sessionid"].value
    expires = Session.objects.get(session_key=key).expire_date
    clock.advance(minutes=25)
    client.get(reverse("dashboard"))
    assert Session.objects.get(session_key=key).expire_date > expires


# --- Re-authentication before executing --------------------------------------------------


@pytest.fixture
def approved(estate, requester, approver) -> AccountRequest:
    return approved_request(requester, approver)


def test_an_old_sign_in_must_confirm_the_password_before_executing(
    approved, requester, clock, estate
):
    client = Client()
    sign_in(client, requester)
    execute_url = reverse("request_execute", args=[approved.pk])
    assert client.get(execute_url).status_code == 200

    clock.advance(minutes=16)
    page = client.get(execute_url)
    assert page.status_code == 302
    assert page["Location"].startswith(reverse("reauth"))

    # A POST is refused before the view: no claim, no call.
    refused = client.post(
        execute_url, {"account_password": PASSWORD, "account_password_confirm": PASSWORD}
    )
    assert refused.status_code == 302 and refused["Location"].startswith(reverse("reauth"))
    approved.refresh_from_db()
    assert approved.status == AccountRequest.Status.APPROVED
    assert estate.calls("CreateAccount") == []

    reauth_url = page["Location"]
    wrong = client.post(reauth_url, {"password": "not-my-password"})
    assert wrong.status_code == 200
    assert "not your password" in wrong.content.decode()
    failed = AuditEvent.objects.filter(action=LOGIN_FAILED, actor=requester)
    assert failed.count() == 1
    assert client.get(execute_url).status_code == 302

    key = client.cookies["sessionid"].value
    confirmed = client.post(reauth_url, {"password": DEMO_TEST_PASSWORD})
    assert confirmed.status_code == 302 and confirmed["Location"] == execute_url
    assert client.cookies["sessionid"].value != key
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.LOGIN, actor=requester, message_id="login.reauthenticated"
    ).exists()
    created = client.post(
        execute_url,
        {"account_password": PASSWORD, "account_password_confirm": PASSWORD},
        follow=True,
    )
    assert "The account was created" in created.content.decode()


def test_re_authentication_never_redirects_off_site(requester):
    client = Client()
    sign_in(client, requester)
    response = client.post(
        reverse("reauth") + "?next=https://evil.example.com/",
        {"password": DEMO_TEST_PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")


def test_the_re_authentication_page_is_not_cached_and_keeps_no_password(requester):
    client = Client()
    sign_in(client, requester)
    page = client.post(reverse("reauth"), {"password": "Typed-Wrong-42"})
    assert "no-store" in page["Cache-Control"]
    assert "Typed-Wrong-42" not in page.content.decode()


# --- Lockout -----------------------------------------------------------------------------


def fail(client: Client, user, times: int, **extra) -> list:
    return [sign_in(client, user, "wrong-password", **extra) for _ in range(times)]


def test_five_failures_lock_the_pair_out_for_fifteen_minutes_and_are_audited(requester, clock):
    client = Client()
    answers = fail(client, requester, 5)
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert "Too many failed sign-ins" in answers[-1].content.decode()
    # Locked: even the right password is refused, and that is audited too.
    assert sign_in(client, requester).status_code == 429
    locked = AuditEvent.objects.filter(action=LOGIN_FAILED, message_id="login.locked_out")
    assert locked.count() == 2
    assert f"username {requester.username}" in event_text(locked.first())

    # The same user from another address is not locked out.
    assert sign_in(Client(), requester, REMOTE_ADDR="10.9.8.7").status_code == 302

    clock.advance(minutes=16)
    assert sign_in(client, requester).status_code == 302


@pytest.mark.parametrize("page", ["login", "login_break_glass"])
def test_a_username_longer_than_any_account_is_refused_next_to_its_field(page):
    """Not checked, so not stored as a failed attempt: django-axes keeps a failed attempt's
    name in 255 characters, and PostgreSQL refused a longer one with a 500."""
    from axes.models import AccessAttempt

    answer = Client().post(reverse(page), {"username": "x" * 300, "password": "wrong"})

    assert answer.status_code == 200
    assert answer.context["form"].errors["username"] == [
        "Ensure this value has at most 150 characters (it has 300)."
    ]
    assert not AccessAttempt.objects.exists()


def test_a_spoofed_x_forwarded_for_does_not_escape_the_lockout(requester):
    client = Client()
    answers = [
        sign_in(client, requester, "wrong-password", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
        for n in range(5)
    ]
    assert answers[-1].status_code == 429
    assert sign_in(client, requester, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429


def test_behind_a_proxy_the_right_most_untrusted_address_counts(requester, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    client = Client()
    # The attacker varies the left-most entry; the proxy appends the real address.
    for n in range(5):
        last = sign_in(
            client,
            requester,
            "wrong-password",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.50",
            **proxy,
        )
    assert last.status_code == 429
    # Another client behind the same proxy is not locked out.
    other = sign_in(Client(), requester, HTTP_X_FORWARDED_FOR="203.0.113.60", **proxy)
    assert other.status_code == 302


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "1.2.3.4", "10.0.0.2"),
        (1, "1.2.3.4", "1.2.3.4"),
        (1, "6.6.6.6, 1.2.3.4", "1.2.3.4"),
        (2, "6.6.6.6, 1.2.3.4, 10.0.0.1", "1.2.3.4"),
        (2, "1.2.3.4", "10.0.0.2"),
        (1, "", "10.0.0.2"),
        (1, "not-an-address", "10.0.0.2"),
    ],
)
def test_the_client_address_for_lockouts(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert lockout.client_ip(request) == expected


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_session_is_saved_in_one_statement_and_never_brought_back_once_signed_out(
    django_assert_num_queries,
):
    from django.contrib.sessions.backends.base import UpdateError

    from accounts_app.sessions import SessionStore

    store = SessionStore()
    store["seen"] = 1
    store.create()
    later = SessionStore(store.session_key)
    later.load()
    later["message"] = "saved"
    with django_assert_num_queries(1):  # one UPDATE: no BEGIN IMMEDIATE ... COMMIT
        later.save()
    assert SessionStore(store.session_key).load()["message"] == "saved"

    SessionStore(store.session_key).delete()  # signed out in another tab
    later["message"] = "again"
    with pytest.raises(UpdateError):  # the middleware answers SessionInterrupted
        later.save()
    assert not Session.objects.filter(session_key=store.session_key).exists()
