from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("accounts_app.urls")),
]

handler400 = "accounts_app.views.errors.bad_request"
handler403 = "accounts_app.views.errors.permission_denied"
handler404 = "accounts_app.views.errors.page_not_found"
handler500 = "accounts_app.views.errors.server_error"
