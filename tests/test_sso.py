"""Signing in through a real OpenID provider (scripts/oidc_provider, over loopback).

The dashboard is driven with Django's test client, the provider's own pages over HTTP
(tests/sso_support.py); tests/test_e2e_sso.py does the same in Chromium. What a
forged or stale answer would need (another issuer, audience, an expired token, a
tampered signature) is crafted with the running provider's own signing key, so each
token differs from a good one in that one point only.
"""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import reverse

from accounts_app import roles
from accounts_app.audit.messages import event_text
from accounts_app.models import AccountRequest, AuditEvent, RoleGrant
from accounts_app.services.mfa import PENDING_TOTP_KEY
from accounts_app.sso.oidc import DashboardOIDCAdapter, verify_id_token
from tests.builders import submitted_request
from tests.conftest import DEMO_TEST_PASSWORD
from tests.fixtures.oidc_provider import CLIENT_ID
from tests.sso_support import callback_from_idp, idp_sign_in

pytestmark = pytest.mark.django_db(transaction=True)

Action = AuditEvent.Action
User = get_user_model()


def signed_in_user(client: Client):
    response = client.get(reverse("preferences"))
    return response.wsgi_request.user if response.status_code == 200 else None


def role_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def events(action: str):
    return AuditEvent.objects.filter(action=action).order_by("seq")


# --- Signing in, roles from groups ---------------------------------------------------


def test_a_first_sign_in_creates_the_user_with_the_roles_of_its_groups(sso, client, make_user):
    make_user("someone")  # the role groups exist
    assert idp_sign_in(client, "alice").status_code == 302
    user = signed_in_user(client)
    assert user is not None and role_names(user) == {roles.REQUESTERS}
    assert not user.has_usable_password()
    account = SocialAccount.objects.get(user=user)
    assert account.uid == f"{sso.issuer}#alice"
    login = events(Action.LOGIN).last()
    assert login.actor == user and login.source_ip == "127.0.0.1"
    assert f"issuer {sso.issuer}, subject alice" in event_text(login)
    change = events(Action.ROLES_CHANGED).get()
    assert "added: Requesters" in event_text(change)
    assert f"issuer {sso.issuer}" in event_text(change)
    # Neither the client secret nor any token is stored.
    assert not SocialApp.objects.exists() and not SocialToken.objects.exists()


def test_roles_from_the_idp_are_one_audit_event_mailed_to_the_auditors(
    sso, client, make_user, mailoutbox
):
    auditor = make_user("auditor.mail", roles.AUDITORS)
    auditor.email = "auditor@example.com"
    auditor.save()
    before = AuditEvent.objects.count()
    mailoutbox.clear()
    idp_sign_in(client, "erin")  # Approvers and staff
    erin = signed_in_user(client)
    # One event says what the IdP changed; the group and staff changes it made are not
    # audited a second time as if an administrator had made them.
    sign_in = AuditEvent.objects.order_by("seq")[before:]
    assert [e.action for e in sign_in if e.action != Action.LOGIN] == [
        Action.USER_CHANGED,  # the user is created on the first sign-in
        Action.ROLES_CHANGED,
    ]
    # Who gave erin her roles is still kept for the approver-age rule.
    assert RoleGrant.objects.filter(user=erin, what=f"group {roles.APPROVERS}").exists()
    assert RoleGrant.objects.filter(user=erin, what="is_staff").exists()
    to_auditor = [m for m in mailoutbox if "auditor@example.com" in m.to]
    # One mail of the new user, one of its roles (not one per group and flag).
    assert len(to_auditor) == 2
    assert ["added: Approvers, staff" in m.body for m in to_auditor] == [False, True]


def test_each_role_comes_from_its_group(sso, make_user):
    make_user("someone")
    expected = {
        "alice": ({roles.REQUESTERS}, False),
        "bob": ({roles.APPROVERS}, False),
        "dave": ({roles.AUDITORS}, False),
        "erin": ({roles.APPROVERS}, True),
    }
    for username, (groups, staff) in expected.items():
        client = Client()
        idp_sign_in(client, username)
        user = signed_in_user(client)
        assert (role_names(user), user.is_staff, user.is_superuser) == (groups, staff, False)


def test_users_are_matched_by_issuer_and_subject_never_by_email(sso, client, make_user):
    local = make_user("alice.local")
    local.email = "alice@example.com"  # the IdP's alice has this address too
    local.save()
    idp_sign_in(client, "alice")
    first = signed_in_user(client)
    assert first != local and first.email == "alice@example.com"
    client.post(reverse("logout"))
    idp_sign_in(client, "alice")
    assert signed_in_user(client) == first
    assert SocialAccount.objects.filter(user=local).count() == 0
    assert User.objects.filter(email="alice@example.com").count() == 2


def test_a_group_removed_at_the_idp_removes_the_role_at_the_next_sign_in(sso, make_user):
    make_user("someone")
    client = Client()
    idp_sign_in(client, "bob")
    bob = signed_in_user(client)
    assert role_names(bob) == {roles.APPROVERS}
    client.post(reverse("logout"))

    sso.set_groups("bob", ["dba-requesters"])
    client = Client()
    idp_sign_in(client, "bob")
    assert role_names(signed_in_user(client)) == {roles.REQUESTERS}
    change = events(Action.ROLES_CHANGED).last()
    assert "added: Requesters; removed: Approvers" in event_text(change)
    assert change.actor == bob and "subject bob" in event_text(change)
    # The approvals page is gone with the role.
    assert client.get(reverse("approvals")).status_code == 403


def test_a_user_whose_groups_map_to_no_role_sees_only_the_page_that_says_so(sso, client, make_user):
    make_user("someone")
    idp_sign_in(client, "mallory")
    for name in ("dashboard", "request_new", "instances", "preferences"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response["Location"] == reverse("no_role")
    page = client.get(reverse("no_role"))
    assert page.status_code == 200
    assert "none of your groups at the identity provider gives a role" in page.content.decode()
    assert "marketing" in page.content.decode()
    assert client.post(reverse("logout")).status_code == 302
    assert signed_in_user(client) is None


def test_a_user_taken_out_of_every_mapped_group_loses_every_role(sso, make_user):
    make_user("someone")
    client = Client()
    idp_sign_in(client, "dave")
    client.post(reverse("logout"))
    sso.set_groups("dave", [])
    client = Client()
    idp_sign_in(client, "dave")
    response = client.get(reverse("audit"))
    assert response.status_code == 302 and response["Location"] == reverse("no_role")
    assert "removed: Auditors" in event_text(events(Action.ROLES_CHANGED).last())


# --- What must be refused ------------------------------------------------------------


def refused(client: Client, response) -> bool:
    return (
        response.status_code == 401
        and "Sign-in refused" in response.content.decode()
        and signed_in_user(client) is None
    )


def with_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    return f"{parts.path}?{urlencode({**query, **changes})}"


def test_a_wrong_state_is_refused_and_audited(sso, client, make_user):
    make_user("someone")
    callback = callback_from_idp(client, "alice")
    response = client.get(with_query(callback, state="not-the-state-we-sent"))
    assert refused(client, response)
    failed = events(Action.LOGIN_FAILED).last()
    assert "Sign-in refused by" in event_text(failed) and failed.source_ip == "127.0.0.1"
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert code not in event_text(failed)


def test_a_replayed_callback_is_refused(sso, client, make_user):
    make_user("someone")
    callback = callback_from_idp(client, "alice")
    assert client.get(callback).status_code == 302
    client.post(reverse("logout"))
    # The same code with the same state: the state was used up by the first sign-in.
    assert refused(client, client.get(callback))


def test_a_used_code_is_refused_by_the_provider_even_with_a_fresh_state(sso, make_user):
    make_user("someone")
    first = Client()
    callback = callback_from_idp(first, "alice")
    assert first.get(callback).status_code == 302
    # An attacker who saw the callback starts a sign-in of their own and presents the code.
    attacker = Client()
    start = attacker.post("/accounts/oidc/idp/login/", {"next": "/"})
    fresh_state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    assert refused(attacker, attacker.get(with_query(callback, state=fresh_state)))
    assert "invalid_grant" in event_text(events(Action.LOGIN_FAILED).last())


def test_local_sign_in_is_refused_when_off_and_audited(sso, settings, requester):
    settings.LOCAL_LOGIN = False
    client = Client()
    page = client.get(reverse("login")).content.decode()
    assert "Sign in with Demo IdP" in page and 'name="password"' not in page
    response = client.post(
        reverse("login"), {"username": requester.username, "password": DEMO_TEST_PASSWORD}
    )
    assert response.status_code == 200 and signed_in_user(client) is None
    failed = events(Action.LOGIN_FAILED).last()
    assert "local sign-in is off" in event_text(failed)
    assert DEMO_TEST_PASSWORD not in event_text(failed) + failed.message_params


def test_a_break_glass_superuser_may_sign_in_and_everyone_hears_of_it(settings, make_user):
    settings.LOCAL_LOGIN = False
    settings.BREAK_GLASS_USERS = ["root"]
    root = make_user("root", superuser=True)
    root.email = "root@example.com"
    root.save()
    other_superuser = make_user("admin2", superuser=True)
    client = Client()
    client.post(
        reverse("login_break_glass"), {"username": "admin2", "password": DEMO_TEST_PASSWORD}
    )
    assert signed_in_user(client) is None  # a superuser, but not named
    assert other_superuser.pk
    response = client.post(
        reverse("login_break_glass"), {"username": "root", "password": DEMO_TEST_PASSWORD}
    )
    assert response.status_code == 302 and signed_in_user(client) == root
    assert event_text(events(Action.LOGIN).last()) == "Break-glass local password."
    # The superusers made above are admin changes, mailed to auditors and superusers too.
    [message] = [m for m in mail.outbox if "Break-glass" in m.subject]
    assert message.to == ["root@example.com"] and "Break-glass sign-in by root" in message.subject
    assert DEMO_TEST_PASSWORD not in message.body


# --- The ID token's checks, with the running provider's own key ------------------------


def signed(sso, **claims) -> str:
    jwk = sso.private_jwk()
    key = jwt.PyJWK.from_json(json.dumps(jwk), algorithm="RS256").key
    now = int(time.time())
    body = {"iss": sso.issuer, "aud": CLIENT_ID, "sub": "alice", "iat": now, "exp": now + 300}
    return jwt.encode({**body, **claims}, key, algorithm="RS256", headers={"kid": jwk["kid"]})


def verify(sso, token: str) -> dict:
    return verify_id_token(
        token, jwks_uri=f"{sso.issuer}/jwks", issuer=sso.issuer, audience=CLIENT_ID
    )


def test_a_token_signed_by_the_provider_for_us_is_accepted(sso):
    assert verify(sso, signed(sso))["sub"] == "alice"


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "https://idp.other.example.com"},
        {"aud": "another-client"},
        {"exp": int(time.time()) - 120},
    ],
    ids=["another issuer", "another audience", "expired"],
)
def test_a_token_wrong_in_one_claim_is_refused(sso, claims):
    token = signed(sso, **{key: value for key, value in claims.items() if key != "exp"})
    if "exp" in claims:
        token = signed(sso, exp=int(time.time()) - 120, iat=int(time.time()) - 720)
    with pytest.raises(OAuth2Error):
        verify(sso, token)


def test_a_tampered_token_is_refused(sso):
    header, payload, signature = signed(sso).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "erin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(OAuth2Error):
        verify(sso, f"{header}.{forged}.{signature}")


def test_a_token_signed_by_another_key_with_the_providers_key_id_is_refused(sso):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    token = jwt.encode(
        {"iss": sso.issuer, "aud": CLIENT_ID, "sub": "alice", "iat": now, "exp": now + 300},
        other,
        algorithm="RS256",
        headers={"kid": sso.private_jwk()["kid"]},
    )
    with pytest.raises(OAuth2Error):
        verify(sso, token)


def test_an_id_token_must_carry_the_nonce_of_this_sign_in(sso):
    adapter = DashboardOIDCAdapter(RequestFactory().get("/"), "idp")
    app = adapter.get_provider().app
    adapter.state = {"nonce": "the-nonce-we-sent"}
    with pytest.raises(OAuth2Error):
        adapter._decode_id_token(app, signed(sso, nonce="someone-elses-nonce"))
    assert adapter._decode_id_token(app, signed(sso, nonce="the-nonce-we-sent"))["sub"] == "alice"


# --- Sign-out ----------------------------------------------------------------------


def test_sign_out_ends_the_dashboard_session_and_then_the_idps(sso, client, make_user):
    make_user("someone")
    idp_sign_in(client, "alice")
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{sso.issuer}/session/end"
    query = parse_qs(target.query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["post_logout_redirect_uri"] == ["http://testserver/login/"]
    assert signed_in_user(client) is None
    assert events(Action.LOGOUT).last().actor.username == "alice"


def test_a_local_sign_out_stays_local(sso, requester):
    client = Client()
    client.force_login(requester)
    assert client.post(reverse("logout"))["Location"] == reverse("login")


# --- The second factor ------------------------------------------------------------


def current_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def enrol(client: Client) -> str:
    client.get(reverse("two_factor"))
    secret = client.session[PENDING_TOTP_KEY]
    page = client.post(reverse("two_factor"), {"code": current_code(secret)})
    assert "Keep these recovery codes" in page.content.decode()
    return secret


def test_totp_enrolment_shows_recovery_codes_once_and_is_audited(requester):
    client = Client()
    client.force_login(requester)
    client.get(reverse("two_factor"))
    wrong = client.post(reverse("two_factor"), {"code": "000000"})
    assert "That code is not valid" in wrong.content.decode()
    assert events(Action.MFA_FAILED).count() == 1
    secret = client.session[PENDING_TOTP_KEY]
    page = client.post(reverse("two_factor"), {"code": current_code(secret)})
    assert page.content.decode().count("<li><code>") == 10
    enrolled = events(Action.MFA_ENROLLED).get()
    assert enrolled.actor == requester and secret not in event_text(enrolled)
    assert "on (authenticator app)" in client.get(reverse("preferences")).content.decode()
    assert "Keep these recovery codes" not in client.get(reverse("two_factor")).content.decode()


def test_with_mfa_required_an_approver_gives_a_second_factor_before_deciding(
    settings, estate, requester, approver
):
    settings.MFA_REQUIRED = True
    account_request = submitted_request(requester)
    client = Client()
    client.post(reverse("login"), {"username": approver.username, "password": DEMO_TEST_PASSWORD})
    secret = enrol(client)
    approve_url = reverse("request_approve", args=[account_request.pk])
    response = client.post(approve_url, {"comment": "fine"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("reauth"))
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.PENDING

    reauth = client.get(response["Location"]).content.decode()
    assert 'name="code"' in reauth and 'name="password"' in reauth
    confirmed = client.post(
        response["Location"],
        {"password": DEMO_TEST_PASSWORD, "code": current_code(secret)},
    )
    assert confirmed.status_code == 302
    assert events(Action.MFA_USED).last().actor == approver
    client.post(approve_url, {"comment": "fine"})
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.APPROVED


def test_an_idp_sign_in_with_a_second_factor_counts(sso, settings, estate, make_user, requester):
    settings.MFA_REQUIRED = True
    account_request = submitted_request(requester)
    client = Client()
    idp_sign_in(client, "bob")  # the IdP says: amr pwd, otp
    assert "second factor asserted" in event_text(events(Action.LOGIN).last())
    client.post(reverse("request_approve", args=[account_request.pk]), {"comment": "fine"})
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.APPROVED


@pytest.mark.parametrize("fallback", ["dashboard", "refuse"])
def test_an_idp_sign_in_without_a_second_factor_gets_what_is_configured(
    sso, settings, estate, requester, fallback
):
    settings.MFA_REQUIRED = True
    settings.OIDC_MFA_FALLBACK = fallback
    account_request = submitted_request(requester)
    client = Client()
    idp_sign_in(client, "carol")  # an approver whose IdP sign-in had no second factor
    response = client.post(reverse("request_approve", args=[account_request.pk]), {"comment": "ok"})
    assert response["Location"].startswith(reverse("reauth"))
    page = client.get(response["Location"]).content.decode()
    if fallback == "refuse":
        assert "your identity provider did not confirm one" in page
        assert "Set up two-factor authentication" not in page
    else:
        assert "Set up two-factor authentication" in page
    assert "Sign in again at your identity provider" in page
    account_request.refresh_from_db()
    assert account_request.status == AccountRequest.Status.PENDING


def test_re_authentication_before_executing_asks_for_the_code_too(requester):
    client = Client()
    client.post(reverse("login"), {"username": requester.username, "password": DEMO_TEST_PASSWORD})
    enrol(client)
    page = client.post(reverse("reauth"), {"password": DEMO_TEST_PASSWORD})
    assert page.status_code == 200 and 'name="code"' in page.content.decode()
    assert "This field is required" in page.content.decode()
    wrong = client.post(reverse("reauth"), {"password": DEMO_TEST_PASSWORD, "code": "123456"})
    assert wrong.status_code == 200 and events(Action.MFA_FAILED).count() == 1


# --- The new views under the security suites' rules, with the IdP configured -----------


def test_with_an_idp_the_sign_in_routes_answer_anyone_and_need_a_csrf_token(sso, requester):
    anonymous = Client()
    assert anonymous.get(reverse("openid_connect_login", args=["idp"])).status_code == 200
    # A callback with no state: refused, not an error.
    assert anonymous.get(reverse("openid_connect_callback", args=["idp"])).status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.get(reverse("login"))
    response = strict.post(reverse("openid_connect_login", args=["idp"]), {"next": "/"})
    assert response.status_code == 403 and b"CSRF verification failed" in response.content
    token = strict.cookies["csrftoken"].value
    response = strict.post(
        reverse("openid_connect_login", args=["idp"]), {"next": "/", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302 and response["Location"].startswith(sso.issuer)


def test_the_preferences_page_shows_where_the_account_comes_from(sso, client, make_user):
    make_user("someone")
    idp_sign_in(client, "erin")
    page = client.get(reverse("preferences")).content.decode()
    assert f"the identity provider {sso.issuer}" in page
    assert "dba-approvers, platform-admins" in page
    assert "Approver" in page and "Set up two-factor authentication" in page


def test_the_admin_shows_where_each_account_comes_from(sso, client, make_user):
    root = make_user("root", superuser=True)
    idp_sign_in(client, "erin")
    erin = signed_in_user(client)
    admin = Client()
    admin.force_login(root)
    listing = admin.get(reverse("admin:auth_user_changelist")).content.decode()
    assert sso.issuer in listing and "local account" in listing
    page = admin.get(reverse("admin:auth_user_change", args=[erin.pk])).content.decode()
    assert "dba-approvers, platform-admins" in page and "Approvers" in page


def test_after_five_refused_codes_no_code_is_checked_for_a_while(requester):
    client = Client()
    client.post(reverse("login"), {"username": requester.username, "password": DEMO_TEST_PASSWORD})
    secret = enrol(client)
    for _ in range(5):
        client.post(reverse("reauth"), {"password": DEMO_TEST_PASSWORD, "code": "000000"})
    right = client.post(
        reverse("reauth"), {"password": DEMO_TEST_PASSWORD, "code": current_code(secret)}
    )
    assert right.status_code == 200 and "That code is not valid" in right.content.decode()
    assert "not checked" in event_text(events(Action.MFA_FAILED).last())
    assert not events(Action.MFA_USED).exists()
