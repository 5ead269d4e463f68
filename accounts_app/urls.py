from __future__ import annotations

from django.urls import include, path

from accounts_app import reauth
from accounts_app.views import (
    audit,
    chat,
    core,
    drift,
    fleet,
    identity,
    instances,
    request_list,
    requests,
    sync,
    tokens,
)

urlpatterns = [
    path("", core.dashboard, name="dashboard"),
    path("healthz", core.healthz, name="healthz"),
    path("livez", core.livez, name="livez"),
    path("login/", identity.login, name="login"),
    path("login/break-glass/", identity.login_break_glass, name="login_break_glass"),
    path("logout/", identity.logout, name="logout"),
    path("reauth/", reauth.reauth, name="reauth"),
    path("preferences/", core.preferences, name="preferences"),
    path("preferences/tokens/", tokens.api_tokens, name="api_tokens"),
    path("preferences/tokens/<int:pk>/revoke/", tokens.api_token_revoke, name="api_token_revoke"),
    path("preferences/two-factor/", identity.two_factor, name="two_factor"),
    path("no-role/", identity.no_role, name="no_role"),
    # The company's IdP (OIDC, django-allauth): sign-in, callback, and the page for a
    # sign-in cancelled at the IdP.
    path("accounts/", include("accounts_app.sso.urls")),
    path(
        "accounts/login/cancelled/",
        identity.login_cancelled,
        name="socialaccount_login_cancelled",
    ),
    path("preferences/chat/", chat.chat_link, name="chat_link"),
    # Chat platforms' callbacks: public, verified by their signatures.
    path("chat/slack/interactivity/", chat.slack_interactivity, name="chat_slack"),
    path("chat/feishu/callback/", chat.feishu_callback, name="chat_feishu"),
    # The approval workflow.
    path("requests/", request_list.request_list, name="request_list"),
    path("requests/new/", requests.request_new, name="request_new"),
    path("requests/preflight/", requests.request_preflight, name="request_preflight"),
    path("requests/<int:pk>/", requests.request_detail, name="request_detail"),
    path("requests/<int:pk>/approve/", requests.request_approve, name="request_approve"),
    path("requests/<int:pk>/reject/", requests.request_reject, name="request_reject"),
    path("requests/<int:pk>/cancel/", requests.request_cancel, name="request_cancel"),
    path("requests/<int:pk>/execute/", requests.request_execute, name="request_execute"),
    path(
        "requests/<int:pk>/execute/result/",
        requests.request_execute_result,
        name="request_execute_result",
    ),
    path("requests/<int:pk>/reconcile/", requests.request_reconcile, name="request_reconcile"),
    path("approvals/", requests.approvals, name="approvals"),
    # Fleet requests: one account on many instances.
    path("requests/new/fleet/", fleet.fleet_new, name="fleet_new"),
    path("requests/<int:pk>/fleet/execute/", fleet.fleet_execute, name="fleet_execute"),
    path(
        "requests/<int:pk>/fleet/execute/result/",
        fleet.fleet_execute_result,
        name="fleet_execute_result",
    ),
    path("requests/<int:pk>/fleet/progress/", fleet.fleet_progress, name="fleet_progress"),
    # Instance inventory.
    path("instances/", instances.instance_list, name="instances"),
    path("instances/choices/", instances.instance_choices, name="instance_choices"),
    path("instances/sync/", instances.instance_sync, name="instance_sync"),
    path("instances/sync/progress/", sync.sync_progress, name="sync_progress"),
    path("instances/<str:instance_id>/", instances.instance_detail, name="instance_detail"),
    path(
        "instances/<str:instance_id>/accounts/refresh/",
        instances.instance_accounts_refresh,
        name="instance_accounts_refresh",
    ),
    # Audit log.
    path("audit/", audit.audit_log, name="audit"),
    path("drift/", drift.drift, name="drift"),
    path("audit/export.<str:fmt>", audit.audit_export, name="audit_export"),
    path("audit/accounts/", audit.created_accounts, name="created_accounts"),
    path(
        "audit/accounts/export.<str:fmt>",
        audit.created_accounts_export,
        name="created_accounts_export",
    ),
]
