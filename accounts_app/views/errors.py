"""Error pages with a correlation id and no stack trace."""

from __future__ import annotations

import logging
import uuid

from django.http import HttpResponse
from django.shortcuts import render
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token

logger = logging.getLogger(__name__)


def _error_page(request, status: int, message: str = "", *, standalone: bool = False):
    correlation_id = uuid.uuid4().hex[:12]
    logger.info("error page %s status=%s path=%s", correlation_id, status, request.path)
    context = {"status": status, "message": message, "correlation_id": correlation_id}
    if standalone:
        # A 500 may come from the database being down: render without the
        # context processors (which read the session and the user).
        response = HttpResponse(loader.render_to_string("errors/500.html", context), status=500)
    else:
        response = render(request, "errors/error.html", context, status=status)
    response["X-Correlation-Id"] = correlation_id
    return response


@requires_csrf_token
def bad_request(request, exception=None):
    return _error_page(request, 400)


@requires_csrf_token
def permission_denied(request, exception=None):
    return _error_page(request, 403, str(exception) if exception else "")


@requires_csrf_token
def page_not_found(request, exception=None):
    return _error_page(request, 404)


@requires_csrf_token
def server_error(request):
    return _error_page(request, 500, standalone=True)
