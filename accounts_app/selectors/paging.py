"""Numbered pages whose rows bring their count: one query where Paginator takes two."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.paginator import Page, Paginator
from django.db.models import F, Func, QuerySet, Subquery


def counted_page(queryset: QuerySet, number, per_page: int, *, columns: Sequence[str] = ()) -> Page:
    """What ``Paginator(queryset, per_page).get_page(number)`` gives, in one query: each
    row carries the count of the whole list, an uncorrelated subquery the database
    runs once (the rows still come through the order's index, unlike a window count,
    which reads every row). A number that is no page (past the last, or below 1) is
    answered as get_page answers it, the last page, with the count asked apart.

    With `columns` (lookups: ``instance__instance_id``), each row is a named tuple of
    them instead of a model: building the models was a fifth of the drift page's time
    (docs/benchmarks.md, eighth round). The count is still the bare queryset's, without
    the joins the columns bring."""
    listed = queryset.values_list(*columns, named=True) if columns else queryset
    paginator = Paginator(listed, per_page)
    try:
        number = int(number)
    except (TypeError, ValueError):
        number = 1
    if number >= 1:
        start = (number - 1) * per_page
        count = Subquery(queryset.order_by().values(count=Func(F("pk"), function="COUNT")))
        counted = queryset.annotate(page_total=count)
        if columns:
            counted = counted.values_list(*columns, "page_total", named=True)
        rows = list(counted[start : start + per_page])
        if rows or number == 1:
            paginator.count = rows[0].page_total if rows else 0
            return Page(rows, number, paginator)
    return paginator.get_page(number)
