"""The OIDC sign-in and callback, under the names allauth reverses."""

from __future__ import annotations

from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.oauth2.views import OAuth2LoginView
from django.contrib.auth.decorators import login_not_required
from django.http import Http404
from django.urls import path

from accounts_app.sso.oidc import DashboardCallbackView, DashboardOIDCAdapter


@login_not_required
def login(request, provider_id):
    try:
        return OAuth2LoginView.adapter_view(DashboardOIDCAdapter(request, provider_id))(request)
    except SocialApp.DoesNotExist:
        raise Http404 from None


@login_not_required
def callback(request, provider_id):
    try:
        adapter = DashboardOIDCAdapter(request, provider_id)
        response = DashboardCallbackView.adapter_view(adapter)(request)
    except SocialApp.DoesNotExist:
        raise Http404 from None
    if response.status_code >= 400:
        # A refusal is in the audit log (adapters.on_authentication_error). Django's own
        # 4xx warning would carry the request, and with it the code in the query string.
        response._has_been_logged = True
    return response


urlpatterns = [
    path("oidc/<str:provider_id>/login/", login, name="openid_connect_login"),
    path("oidc/<str:provider_id>/login/callback/", callback, name="openid_connect_callback"),
]
