"""Personal API tokens, a part of the preferences: create (shown once), list, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounts_app.forms.tokens import ApiTokenForm
from accounts_app.models import ApiToken
from accounts_app.services import tokens


def api_tokens(request):
    form = ApiTokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        # Rendered, never redirected: the token is in this one answer and nowhere else
        # (no message, no session; the page is not cached: NoStoreForSignedInMiddleware).
        created = tokens.token_create(user=request.user, **form.cleaned_data)
        form = ApiTokenForm()
    context = {
        "form": form,
        "created": created,
        "tokens": ApiToken.objects.filter(user=request.user),
    }
    return render(request, "tokens/list.html", context)


@require_POST
def api_token_revoke(request, pk: int):
    if tokens.token_revoke(token_id=pk, by=request.user):
        messages.success(request, _("The token is revoked."))
    return redirect("api_tokens")
