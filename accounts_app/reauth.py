"""Re-authentication before executing: a sign-in older than REAUTH_MAX_AGE asks again.

Creating an account is the one irreversible step, so a session left open on an
unlocked laptop must not be enough: the user types their own dashboard password
again. The check goes through ``authenticate()``, so failures are throttled by
django-axes and audited as failed sign-ins like any other.

The second factor is asked here too: a user with TOTP types a code (or a recovery
code); with MFA_REQUIRED, approving and executing need a second factor proven in the
last REAUTH_MAX_AGE, from the IdP's assertion (amr/acr) at sign-in or from this page.
A user of the IdP, who has no dashboard password, confirms with a TOTP code or signs
in again at the IdP.
"""

from __future__ import annotations

import time
from datetime import timedelta
from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from accounts_app import policy
from accounts_app.audit import Origin, record_event
from accounts_app.audit.messages import message as audit_message
from accounts_app.models import AuditEvent
from accounts_app.services.mfa import mfa_enrolled, mfa_verify
from accounts_app.sso.middleware import NO_ROLE_KEY

# Seconds since the epoch of the last time the user proved their password.
AUTHENTICATED_AT_KEY = "authenticated_at"
# ... and their second factor (the IdP's assertion, or a code typed here).
SECOND_FACTOR_AT_KEY = "second_factor_at"
# The issuer of an IdP sign-in (absent for a local one).
SSO_ISSUER_KEY = "sso_issuer"


def mark_signed_in(request: HttpRequest) -> None:
    """At sign-in: note the time, and pin the session's end to SESSION_COOKIE_AGE from now.

    Django computes a session's expiry at each save, from the time of that save: any
    request that writes the session (the idle-timeout middleware does, once a minute)
    would push the end of a 12-hour session forward for ever. An expiry given as a
    date stays put, so the lifetime is absolute.
    """
    request.session[AUTHENTICATED_AT_KEY] = time.time()
    request.session.set_expiry(timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE))


def mark_signed_in_through_idp(request: HttpRequest, identity) -> None:
    request.session[SSO_ISSUER_KEY] = identity.issuer
    request.session[NO_ROLE_KEY] = not identity.roles
    if identity.asserted_second_factor:
        request.session[SECOND_FACTOR_AT_KEY] = time.time()


def _recent(request: HttpRequest, key: str) -> bool:
    at = request.session.get(key)
    if not isinstance(at, int | float):
        return False
    return 0 <= time.time() - at <= settings.REAUTH_MAX_AGE.total_seconds()


def signed_in_recently(request: HttpRequest) -> bool:
    return _recent(request, AUTHENTICATED_AT_KEY)


def second_factor_recently(request: HttpRequest) -> bool:
    return _recent(request, SECOND_FACTOR_AT_KEY)


def second_factor_required(next_view: str):
    """With MFA_REQUIRED, an approver's decision needs a recent second factor.

    Refused without running the view; the user proves it, then comes back to
    `next_view` (called with the view's own arguments).
    """

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not policy.needs_second_factor(request.user, "approve") or (
                second_factor_recently(request)
            ):
                return view(request, *args, **kwargs)
            messages.warning(request, _("Confirm your second factor first: nothing was done."))
            return redirect_to_reauth(reverse(next_view, args=args, kwargs=kwargs))

        return wrapped

    return decorator


def recent_login_required(view):
    """Send the user to the re-authentication page unless they signed in recently.

    A POST is refused without running the view (the password typed for Alibaba is
    dropped, and no API call is made); the user comes back to the page by GET.
    """

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        factor_ok = second_factor_recently(request) or not policy.needs_second_factor(
            request.user, "execute"
        )
        if signed_in_recently(request) and factor_ok:
            return view(request, *args, **kwargs)
        if request.method == "POST":
            messages.warning(
                request,
                _(
                    "Confirm your password first: nothing was sent. Then type the new "
                    "password again."
                ),
            )
        return redirect_to_reauth(request.get_full_path())

    return wrapped


def redirect_to_reauth(next_url: str) -> HttpResponse:
    return redirect(f"{reverse('reauth')}?{urlencode({'next': next_url})}")


class ReauthForm(forms.Form):
    # Named "password" so that django-axes masks it in what it stores of failed attempts.
    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "current-password", "autofocus": True}
        ),
    )
    code = forms.CharField(
        label=_("Code from your authenticator app, or a recovery code"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        # An IdP user has no dashboard password; a user without TOTP has no code.
        if not user.has_usable_password():
            del self.fields["password"]
        if not mfa_enrolled(user):
            del self.fields["code"]


def _safe_next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


@sensitive_post_parameters()
@sensitive_variables()
@never_cache
def reauth(request: HttpRequest) -> HttpResponse:
    form = ReauthForm(request.POST or None, user=request.user)
    next_url = _safe_next(request)
    if request.method == "POST" and form.fields and form.is_valid():
        if _password_ok(request, form) and _code_ok(request, form):
            _confirmed(request, second_factor="code" in form.fields)
            return redirect(next_url)
    context = {
        "form": form,
        "next": next_url,
        "sso_issuer": request.session.get(SSO_ISSUER_KEY),
        "mfa_missing": policy.needs_second_factor(request.user, "execute")
        and "code" not in form.fields,
        "mfa_fallback": settings.OIDC_MFA_FALLBACK,
    }
    return render(request, "registration/reauth.html", context)


def _password_ok(request: HttpRequest, form: ReauthForm) -> bool:
    if "password" not in form.fields:
        return True
    # authenticate(), not check_password(): django-axes counts and locks out, and a
    # failure sends user_login_failed, which the audit log records (LOGIN_FAILED).
    user = authenticate(
        request, username=request.user.get_username(), password=form.cleaned_data["password"]
    )
    if user is not None and user.pk == request.user.pk:
        return True
    form.add_error(None, _("That is not your password."))
    return False


def _code_ok(request: HttpRequest, form: ReauthForm) -> bool:
    if "code" not in form.fields:
        return True
    if mfa_verify(
        user=request.user, code=form.cleaned_data["code"], origin=Origin.from_request(request)
    ):
        return True
    form.add_error("code", _("That code is not valid, or was used already."))
    return False


def _confirmed(request: HttpRequest, *, second_factor: bool) -> None:
    # A new session key for the stepped-up session, as at sign-in.
    request.session.cycle_key()
    request.session[AUTHENTICATED_AT_KEY] = time.time()
    if second_factor:
        request.session[SECOND_FACTOR_AT_KEY] = time.time()
    record_event(
        action=AuditEvent.Action.LOGIN,
        outcome=AuditEvent.Outcome.SUCCESS,
        origin=Origin.from_request(request),
        message=audit_message("login.reauthenticated"),
    )
