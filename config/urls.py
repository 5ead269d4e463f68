from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import set_language

from accounts_app.api.main import urls as api_urls

urlpatterns = [
    path("admin/", admin.site.urls),
    # The language switcher is on the sign-in page too.
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("", include("accounts_app.urls")),
    path("api/v1/", api_urls()),
]

handler400 = "accounts_app.views.errors.bad_request"
handler403 = "accounts_app.views.errors.permission_denied"
handler404 = "accounts_app.views.errors.page_not_found"
handler500 = "accounts_app.views.errors.server_error"
