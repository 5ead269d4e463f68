"""counted_page: Paginator.get_page's answer, the count coming with the rows."""

from __future__ import annotations

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts_app.models import Instance
from accounts_app.selectors.instances import InstanceFilter, filtered_instances
from accounts_app.selectors.paging import counted_page
from tests.builders import instance_row

pytestmark = pytest.mark.django_db


@pytest.fixture
def seven_instances():
    for number in range(7):
        instance_row(f"r-bp1page{number:07d}", name=f"paged-{number}")
    return filtered_instances(InstanceFilter(q="paged"))


def described(page) -> tuple:
    return (
        [row.pk for row in page.object_list],
        page.number,
        page.paginator.count,
        page.paginator.num_pages,
        page.has_next(),
        page.has_previous(),
    )


@pytest.mark.parametrize("number", [None, "1", "2", "3", "4", "99", "0", "-1", "two", "2.5"])
def test_it_answers_as_the_paginator_does(seven_instances, number):
    expected = Paginator(seven_instances, 3).get_page(number)
    assert described(counted_page(seven_instances, number, 3)) == described(expected)


@pytest.mark.parametrize("number", [None, "2", "3", "99", "0", "two"])
def test_with_columns_each_row_is_a_tuple_of_them_on_every_page(seven_instances, number):
    """The same page, each row a named tuple of the columns asked (a lookup across a
    relation too), also on the way that asks the count apart (past the last page)."""
    columns = ("pk", "instance_id", "name")
    expected = Paginator(seven_instances, 3).get_page(number)
    page = counted_page(seven_instances, number, 3, columns=columns)
    assert described(page) == described(expected)
    assert [(row.instance_id, row.name) for row in page.object_list] == [
        (instance.instance_id, instance.name) for instance in expected.object_list
    ]
    assert all(not isinstance(row, Instance) for row in page.object_list)


def test_an_empty_list_is_one_empty_page():
    page = counted_page(Instance.objects.none(), "1", 3)
    assert described(page) == ([], 1, 0, 1, False, False)


def test_a_page_and_its_count_are_one_query(seven_instances):
    with CaptureQueriesContext(connection) as queries:
        page = counted_page(seven_instances, "3", 3)
        assert page.paginator.count == 7
        assert page.paginator.num_pages == 3
    assert len(queries) == 1


@pytest.mark.parametrize("number", [None, "1", "2", "3", "4", "99", "0", "two"])
@pytest.mark.parametrize("region", ["", "cn-hangzhou", "cn-nowhere"])
def test_prepared_pages_answer_as_the_paginator_does_compiled_or_not(
    seven_instances, number, region
):
    """PreparedPages: its first pages through a query compiled once, the others (and a
    number that is no page) through counted_page; each as Paginator answers."""
    from accounts_app.selectors.paging import PreparedPages

    def listed(*, region=None):
        instances = Instance.objects.filter(name__startswith="paged").order_by("pk")
        return instances.filter(region_id=region) if region is not None else instances

    pages = PreparedPages(listed, ("pk", "instance_id", "name"), region=str)
    values = {"region": region} if region else {}
    expected = Paginator(listed(**values), 3).get_page(number)
    for _ in range(2):  # compiled, then run again
        page = pages.page(number, 3, **values)
        assert described(page) == described(expected)
        assert [row.name for row in page.object_list] == [i.name for i in expected.object_list]
