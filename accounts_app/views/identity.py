"""Signing in and out (local password, the company's IdP), the no-role page, and TOTP."""

from __future__ import annotations

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts_app.audit import Origin
from accounts_app.forms.identity import SignInForm, TotpCodeForm
from accounts_app.reauth import SSO_ISSUER_KEY
from accounts_app.selectors.identity import account_source, sign_in_options
from accounts_app.services.mfa import (
    mfa_enrol,
    mfa_enrolled,
    mfa_enrolment_qr,
    mfa_enrolment_secret,
)
from accounts_app.sso.oidc import end_session_url


@login_not_required
def login(request):
    view = auth_views.LoginView.as_view(
        authentication_form=SignInForm,
        redirect_authenticated_user=True,
        extra_context=sign_in_options(),
    )
    return view(request)


@login_not_required
def login_break_glass(request):
    """The password form for break-glass superusers while LOCAL_LOGIN is off (not linked)."""
    view = auth_views.LoginView.as_view(
        authentication_form=SignInForm,
        template_name="registration/break_glass.html",
        redirect_authenticated_user=True,
    )
    return view(request)


@login_not_required
def login_cancelled(request):
    """Where allauth sends a sign-in the user cancelled at the IdP."""
    return render(request, "socialaccount/login_cancelled.html")


@require_POST
def logout(request):
    """Ends the dashboard session, then the IdP's where it offers RP-initiated logout."""
    idp_logout = ""
    if request.session.get(SSO_ISSUER_KEY):
        idp_logout = end_session_url(
            settings.OIDC_ISSUER,
            client_id=settings.OIDC_CLIENT_ID,
            post_logout_redirect_uri=request.build_absolute_uri(reverse("login")),
        )
    auth.logout(request)
    return redirect(idp_logout or settings.LOGOUT_REDIRECT_URL)


@require_GET
def no_role(request):
    return render(request, "registration/no_role.html", {"source": account_source(request.user)})


@never_cache
def two_factor(request):
    """Turn TOTP on: scan, type a code, keep the recovery codes shown once."""
    if mfa_enrolled(request.user):
        return render(request, "registration/two_factor.html", {"enrolled": True})
    form = TotpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = mfa_enrol(
            user=request.user,
            session=request.session,
            code=form.cleaned_data["code"],
            origin=Origin.from_request(request),
        )
        if codes:
            messages.success(request, _("Two-factor authentication is on."))
            return render(request, "registration/two_factor.html", {"recovery_codes": codes})
        form.add_error("code", _("That code is not valid: check the time on your phone."))
    secret = mfa_enrolment_secret(session=request.session)
    qr = mfa_enrolment_qr(user=request.user, secret=secret)
    context = {"form": form, "secret": secret, "qr_svg": qr}
    return render(request, "registration/two_factor.html", context)
