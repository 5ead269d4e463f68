"""Numbered pages whose rows bring their count: one query where Paginator takes two."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence

from django.core.paginator import Page, Paginator
from django.db.models import F, Func, QuerySet, Subquery

from accounts_app.selectors.prepared import PREPARED_PAGES, Prepared


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
    number = _page_number(number)
    if number >= 1:
        start = (number - 1) * per_page
        counted = _counted(queryset, columns)
        if columns:
            counted = counted.values_list(*columns, "page_total", named=True)
        rows = list(counted[start : start + per_page])
        if rows or number == 1:
            paginator.count = rows[0].page_total if rows else 0
            return Page(rows, number, paginator)
    return paginator.get_page(number)


def _page_number(number) -> int:
    try:
        return int(number)
    except (TypeError, ValueError):
        return 1


def _counted(queryset: QuerySet, columns: Sequence[str]) -> QuerySet:
    """The queryset with each row's `page_total`; of `columns` and it, when given."""
    count = Subquery(queryset.order_by().values(count=Func(F("pk"), function="COUNT")))
    counted = queryset.annotate(page_total=count)
    return counted.values_list(*columns, "page_total") if columns else counted


class PreparedPages:
    """counted_page() of ``build(*shape, **values)`` with `columns`, its first
    PREPARED_PAGES pages of each size compiled once per shape (selectors/prepared.py):
    building and compiling a list's query cost more than running it. The other pages,
    and a number that is no page, are built each time."""

    def __init__(self, build: Callable[..., QuerySet], columns: Sequence[str], **kinds: type):
        self._build = build
        self._columns = columns
        self._row = namedtuple("Row", (*columns, "page_total"))
        self._prepared = Prepared(self._page_query, **kinds)

    def _page_query(self, _viewer, start: int, size: int, *shape, **values) -> QuerySet:
        return _counted(self._build(*shape, **values), self._columns)[start : start + size]

    def page(self, number, size: int, *shape, **values) -> Page:
        number = _page_number(number)
        if 1 <= number <= PREPARED_PAGES:
            start = (number - 1) * size
            found = self._prepared.tuples(None, shape=(start, size, *shape), **values)
            if found or number == 1:
                rows = [self._row._make(row) for row in found]
                # The rows are all the page needs: the paginator only counts.
                paginator = Paginator([], size)
                paginator.count = rows[0].page_total if rows else 0
                return Page(rows, number, paginator)
        return counted_page(self._build(*shape, **values), number, size, columns=self._columns)
