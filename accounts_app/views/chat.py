"""Chat: the platforms' callbacks (public, and verified by the service before anything
else), and linking a chat account from the preferences page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts_app.audit.origin import client_ip
from accounts_app.forms.chat import ChatLinkForm
from accounts_app.services import chat_approvals
from accounts_app.services.chat import chat_identity_link, chat_identity_unlink


@csrf_exempt  # the platform signs the request instead
@login_not_required
@require_POST
def slack_interactivity(request):
    answer = chat_approvals.slack_callback(
        body=request.body, headers=request.headers, source_ip=client_ip(request)
    )
    return HttpResponse(status=answer.status)


@csrf_exempt  # the platform signs the request instead
@login_not_required
@require_POST
def feishu_callback(request):
    answer = chat_approvals.feishu_callback(
        body=request.body, headers=request.headers, source_ip=client_ip(request)
    )
    return JsonResponse(answer.body or {}, status=answer.status)


@require_POST
def chat_link(request):
    form = ChatLinkForm(request.POST)
    if form.is_valid() and form.cleaned_data["unlink"]:
        chat_identity_unlink(user=request.user, platform=form.cleaned_data["unlink"])
        messages.success(request, _("Your chat account is no longer linked."))
    elif form.is_valid():
        try:
            chat_identity_link(user=request.user, code=form.cleaned_data["code"])
            messages.success(request, _("Your chat account is linked."))
        except ValidationError as error:
            messages.error(request, error.messages[0])
    return redirect("preferences")
