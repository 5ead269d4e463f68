"""The NinjaAPI object: routers, authentication, and every error in the API's one shape."""

from __future__ import annotations

from django.http import Http404
from django.http.request import RawPostDataException
from django.utils.translation import gettext_lazy as _
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError, ValidationError

from accounts_app.api import audit, instances, requests
from accounts_app.api.auth import AUTH
from accounts_app.api.errors import ApiError, field_error

api = NinjaAPI(
    title="Redis account dashboard API",
    version="1",
    description=(
        "The dashboard's approval workflow for scripts and ITSM: the same services, rules, "
        "permissions and audit as the web pages. Authenticate with `Authorization: Bearer "
        "<token>` (a personal token from the preferences page or `manage.py "
        "create_api_token`)."
    ),
    auth=AUTH,
    urls_namespace="api",
    docs=Swagger(settings={"persistAuthorization": False}),
    docs_url="/docs",
    openapi_url="/openapi.json",
)
api.add_router("", instances.router)
api.add_router("", requests.router)
api.add_router("", audit.router)


@api.exception_handler(ApiError)
def api_error(request, error: ApiError):
    return error.response()


@api.exception_handler(AuthenticationError)
def unauthenticated(request, error):
    return ApiError(
        401, "Unauthenticated", _("Send a valid token: Authorization: Bearer <token>.")
    ).response()


@api.exception_handler(ValidationError)
def invalid_request(request, error: ValidationError):
    """400 with every field's errors. Never the value sent: it may be a password."""
    errors: dict[str, list[dict]] = {}
    for item in error.errors:
        field = str(item["loc"][-1]) if item.get("loc") else "__all__"
        message = _("This value is missing or not of the expected type.")
        errors.setdefault(field, []).append(
            field_error(field, item.get("type", "invalid"), message)
        )
    return ApiError(
        400, "InvalidParameter", _("Correct the fields below."), errors=errors
    ).response()


@api.exception_handler(RawPostDataException)
def form_encoded_body(request, error):
    # A form-encoded body read by the CSRF check of a session call: the API takes JSON.
    return ApiError(400, "InvalidParameter", _("The request body is not valid JSON.")).response()


@api.exception_handler(Http404)
def not_found(request, error):
    return ApiError(404, "NotFound", _("Not found.")).response()


@api.exception_handler(HttpError)
def http_error(request, error: HttpError):
    # ninja's own refusals: a session call without its CSRF token, a body that is not JSON.
    if error.status_code == 403:
        message = _("The CSRF check failed: send the page's CSRF token in X-CSRFToken.")
        return ApiError(403, "Forbidden.Csrf", message).response()
    return ApiError(
        error.status_code, "InvalidParameter", _("The request body is not valid JSON.")
    ).response()


def urls():
    """The API's URL patterns. The API answers 401 itself, so the sign-in redirect of
    LoginRequiredMiddleware is turned off for them; ninja checks CSRF for session calls."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback.login_required = False
    return patterns, app_name, namespace
