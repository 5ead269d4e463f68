"""Re-authentication before executing: a sign-in older than REAUTH_MAX_AGE asks again.

Creating an account is the one irreversible step, so a session left open on an
unlocked laptop must not be enough: the user types their own dashboard password
again. The check goes through ``authenticate()``, so failures are throttled by
django-axes and audited as failed sign-ins like any other.
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

from accounts_app.audit import Origin, record_event
from accounts_app.models import AuditEvent

# Seconds since the epoch of the last time the user proved their password.
AUTHENTICATED_AT_KEY = "authenticated_at"


def mark_signed_in(request: HttpRequest) -> None:
    """At sign-in: note the time, and pin the session's end to SESSION_COOKIE_AGE from now.

    Django computes a session's expiry at each save, from the time of that save: any
    request that writes the session (the idle-timeout middleware does, once a minute)
    would push the end of a 12-hour session forward for ever. An expiry given as a
    date stays put, so the lifetime is absolute.
    """
    request.session[AUTHENTICATED_AT_KEY] = time.time()
    request.session.set_expiry(timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE))


def signed_in_recently(request: HttpRequest) -> bool:
    authenticated_at = request.session.get(AUTHENTICATED_AT_KEY)
    if not isinstance(authenticated_at, int | float):
        return False
    age = time.time() - authenticated_at
    return 0 <= age <= settings.REAUTH_MAX_AGE.total_seconds()


def recent_login_required(view):
    """Send the user to the re-authentication page unless they signed in recently.

    A POST is refused without running the view (the password typed for Alibaba is
    dropped, and no API call is made); the user comes back to the page by GET.
    """

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if signed_in_recently(request):
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
    form = ReauthForm(request.POST or None)
    next_url = _safe_next(request)
    if request.method == "POST" and form.is_valid():
        # authenticate(), not check_password(): django-axes counts and locks out, and a
        # failure sends user_login_failed, which the audit log records (LOGIN_FAILED).
        user = authenticate(
            request,
            username=request.user.get_username(),
            password=form.cleaned_data["password"],
        )
        if user is not None and user.pk == request.user.pk:
            _confirmed(request)
            return redirect(next_url)
        form.add_error(None, _("That is not your password."))
    return render(request, "registration/reauth.html", {"form": form, "next": next_url})


def _confirmed(request: HttpRequest) -> None:
    # A new session key for the stepped-up session, as at sign-in.
    request.session.cycle_key()
    request.session[AUTHENTICATED_AT_KEY] = time.time()
    record_event(
        action=AuditEvent.Action.LOGIN,
        outcome=AuditEvent.Outcome.SUCCESS,
        origin=Origin.from_request(request),
        comment="re-authenticated",
    )
