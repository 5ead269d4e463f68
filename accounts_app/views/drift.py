"""The drift page: accounts on the instances that differ from what the dashboard did."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts_app import roles
from accounts_app.forms.drift import DriftFilterForm
from accounts_app.selectors import accounts as account_selectors

PAGE_SIZE = 50


@roles.role_required(roles.VIEW_EVERYTHING)
@require_GET
def drift(request):
    form = DriftFilterForm(request.GET)
    filters = form.filters()
    context = {
        "form": form,
        "page": account_selectors.drift_page(
            **filters, number=request.GET.get("page"), size=PAGE_SIZE
        ),
        "counts": account_selectors.drift_counts(instance_id=filters["instance_id"]),
    }
    return render(request, "accounts/drift.html", context)
