"""The request list: every request the user may see, by tab, filtered and paged."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from accounts_app.forms.request_list import RequestFilterForm
from accounts_app.selectors import request_list as selectors


@require_GET
@vary_on_headers("HX-Request")
def request_list(request):
    tabs = selectors.available_tabs(request.user)
    tab = request.GET.get("tab") if request.GET.get("tab") in tabs else tabs[0]
    form = RequestFilterForm(request.GET)
    page = None
    if form.is_valid():
        number = selectors.page_number(request.GET.get("page"))
        page = selectors.tab_page(request.user, tab, form.request_filter(), number)
    template = "requests/list.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#request-rows"
    context = {"form": form, "tabs": tabs, "tab": tab, "page": page}
    return render(request, template, context)
