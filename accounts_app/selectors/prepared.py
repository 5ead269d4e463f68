"""Querysets compiled to SQL once per process, then run again with other values.

Building a queryset with subqueries and compiling it to SQL costs more CPU than SQLite
takes to run it: the dashboard's lists took 5.4 ms to build and compile, and the
navigation badge's count 2.5 ms on every page an approver opens (docs/benchmarks.md).
A Prepared query builds its queryset once per shape (what changes the SQL's text: the
viewer's permissions, and what the caller names in ``shape``) for a stand-in of the
viewer with a primary key nobody has, and stand-ins of its other values; it keeps the
SQL and the compiler's map of the columns. Each run puts the viewer's key and the run's
values where the stand-ins were in the parameters; the rows are the ORM's own (model
instances with their ``select_related`` objects and annotations).

A builder must take every value that varies between runs as an argument (a time, not
``timezone.now()`` inside), or the first run's value would be kept: ``_compile``
refuses a stand-in written into the SQL's text, and the tests compare each prepared
query with its queryset run directly. A run may give only some of the declared values
(a page's filters that are set): which ones is part of the shape.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Expression, IntegerField, QuerySet
from django.db.models.query import ModelIterable

Shape = tuple[Hashable, ...]

# A page's LIMIT and OFFSET are written into the SQL, so each page of a list is a shape
# of its own: a list keeps its first pages compiled, and builds the later ones each time.
PREPARED_PAGES = 5

# Values no row holds: a negative primary key, times before the app existed. Within a
# 32-bit integer's range: the ORM drops a comparison with a value its column cannot hold
# (PostgreSQL's integer), and the run's value would then never be asked.
_STAND_IN_PK = -1_987_654_321


def _stand_in(kind: type, number: int) -> Any:
    if kind is datetime:
        return datetime(1901, 2, 3 + number, 4, 5, 6, 789_012, tzinfo=UTC)
    if kind is int:
        return _STAND_IN_PK - 1 - number
    if kind is str:
        # Control characters: no identifier, name or search holds them.
        return f"\x1eprepared stand-in {number}\x1f"
    raise TypeError(f"no stand-in for {kind.__name__}")


# A query the ORM knows matches nothing (EmptyResultSet): there is no SQL to run.
_NOTHING = object()

# Shapes kept compiled per query, at most: a user's choices pick the shape of some
# queries (the audit page's filters), and each kept one holds its SQL and compiler.
MAX_SHAPES = 500


class Prepared:
    """``build(viewer, *shape, **values) -> QuerySet``, compiled once per shape and
    database (and the viewer's permissions; ``viewer`` None: a query for nobody in
    particular)."""

    def __init__(self, build: Callable[..., QuerySet], **values: type) -> None:
        self._build = build
        self._kinds = values
        self._compiled: dict[Hashable, tuple] = {}

    def rows(self, viewer, *, shape: Shape = (), using: str = "default", **values) -> list:
        """The model instances the built queryset would give for this viewer and values."""
        queryset, compiler, sql, params = self._prepared(viewer, shape, using, "rows", values)
        if sql is _NOTHING or _beyond_every_key(values, using):
            return []
        run = self._bound_compiler(compiler, sql, params, viewer, values, using)
        return list(ModelIterable(_Compiled(queryset, using, run)))

    def values(self, viewer, *, shape: Shape = (), using: str = "default", **values) -> list:
        """The dicts the built queryset (a ``values()`` one) would give."""
        queryset, compiler, sql, params = self._prepared(viewer, shape, using, "values", values)
        if sql is _NOTHING or _beyond_every_key(values, using):
            return []
        run = self._bound_compiler(compiler, sql, params, viewer, values, using)
        query = queryset.query  # the names as ValuesIterable reads them
        names = list(query.selected or [*query.values_select, *query.annotation_select])
        return [dict(zip(names, row, strict=True)) for row in run.results_iter()]

    def count(self, viewer, *, shape: Shape = (), using: str = "default", **values) -> int:
        """How many rows the built queryset (sliced, for a capped count) would give."""
        _queryset, _compiler, sql, params = self._prepared(viewer, shape, using, "count", values)
        if sql is _NOTHING or _beyond_every_key(values, using):
            return 0
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(sql, self._bind(params, viewer, values, connection))
            return cursor.fetchone()[0]

    def tuples(self, viewer, *, shape: Shape = (), using: str = "default", **values) -> list:
        """The rows the built queryset (a ``values_list()`` one) would give, as tuples."""
        _queryset, compiler, sql, params = self._prepared(viewer, shape, using, "tuples", values)
        if sql is _NOTHING or _beyond_every_key(values, using):
            return []
        run = self._bound_compiler(compiler, sql, params, viewer, values, using)
        return list(run.results_iter(tuple_expected=True))

    def _bound_compiler(self, compiler, sql: str, params: tuple, viewer, values: dict, using):
        """A copy of the compiled query's compiler that answers with this run's values."""
        run = copy.copy(compiler)
        run.connection = connections[using]
        bound = self._bind(params, viewer, values, run.connection)
        run.as_sql = lambda *args, **kwargs: (sql, bound)
        return run

    def _bind(self, params: tuple, viewer, values: dict, connection) -> tuple:
        chosen = {**values, **({"viewer": viewer.pk} if viewer is not None else {})}
        return tuple(
            _adapt(chosen[param.name], connection) if isinstance(param, _Slot) else param
            for param in params
        )

    def _prepared(self, viewer, shape: tuple, using: str, kind: str, values: dict) -> tuple:
        if not set(values) <= set(self._kinds):
            raise TypeError(f"values {sorted(values)}, declared {sorted(self._kinds)}")
        names = tuple(name for name in self._kinds if name in values)
        key = (kind, using, shape, names)
        if viewer is not None:
            # The viewer's permissions change the SQL (policy asks them while building).
            # (A superuser holds every permission without asking the database.)
            superuser = viewer.is_superuser
            held = frozenset() if superuser else frozenset(viewer.get_all_permissions())
            key += (viewer.is_active, superuser, held)
        if key in self._compiled:
            return self._compiled[key]
        compiled = self._compile(viewer, shape, using, kind, names)
        if len(self._compiled) < MAX_SHAPES:
            self._compiled[key] = compiled
        return compiled

    def _compile(self, viewer, shape: tuple, using: str, kind: str, names: tuple) -> tuple:
        stand_in = None
        if viewer is not None:
            stand_in = copy.copy(viewer)
            stand_in._state = copy.copy(viewer._state)
            stand_in.pk = _STAND_IN_PK
            # Asked of the real viewer: the stand-in's key has no permissions in the database.
            stand_in.has_perm = viewer.has_perm
            stand_in.get_all_permissions = viewer.get_all_permissions
        stand_ins = {
            name: _stand_in(value_kind, number)
            for number, (name, value_kind) in enumerate(self._kinds.items())
            if name in names
        }
        queryset = self._build(stand_in, *shape, **stand_ins)
        connection = connections[using]
        try:
            if kind == "count":
                inner, params = queryset.values("pk").query.get_compiler(using).as_sql()
                compiler, sql = None, f"SELECT COUNT(*) FROM ({inner}) prepared_count"  # noqa: S608 (the ORM's SQL)
            else:
                compiler = queryset.query.get_compiler(using)
                sql, params = compiler.as_sql()
        except EmptyResultSet:  # nothing for these permissions (none()): no query to run
            return queryset, None, _NOTHING, ()
        slots = {_adapt(_STAND_IN_PK, connection): _Slot("viewer")} if viewer is not None else {}
        slots |= {_adapt(value, connection): _Slot(name) for name, value in stand_ins.items()}
        for value in (_STAND_IN_PK, *stand_ins.values()):
            if str(_adapt(value, connection)) in sql:
                raise ValueError(f"a stand-in is written into the SQL, not passed: {sql}")
        # A key the SQL does not ask would be the stand-in's answer for every run; so would
        # a text the SQL asks changed (a lookup such as icontains wraps it in wildcards).
        asked = {"viewer": _STAND_IN_PK} if viewer is not None else {}
        asked |= {n: value for n, value in stand_ins.items() if isinstance(value, int | str)}
        for name, value in asked.items():
            if _adapt(value, connection) not in params:
                raise ValueError(f"the query does not ask {name} as it is given: {sql}")
        marked = tuple(slots.get(param, param) if _hashable(param) else param for param in params)
        return queryset, compiler, sql, marked


class JsonKeys(Expression):
    """The keys of a JSON array given as one text, as a subquery: ``pk__in=JsonKeys(keys)``
    with ``keys=json.dumps([...])``. A list of keys is as many parameters as it has keys
    (the SQL's text changes with their number); one text lets a Prepared query take any
    number of them (declared ``keys=str``)."""

    output_field = IntegerField()

    def __init__(self, keys: str) -> None:
        super().__init__()
        self.keys = keys

    def as_sql(self, compiler, connection):
        return "(SELECT value FROM json_each(%s))", [self.keys]

    def as_postgresql(self, compiler, connection):
        return "(SELECT jsonb_array_elements_text(%s::jsonb)::bigint)", [self.keys]


class _Compiled:
    """What ModelIterable reads of a queryset, with the compiler already made. (Not a
    copy of the queryset: copying one runs it.)"""

    def __init__(self, queryset: QuerySet, using: str, compiler) -> None:
        self.db = using
        self.model = queryset.model
        self._fetch_mode = queryset._fetch_mode
        self._known_related_objects = queryset._known_related_objects
        self.query = self
        self._compiler = compiler

    def get_compiler(self, *args, **kwargs):
        return self._compiler


class _Slot:
    """Where a run's value goes in the parameters."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _beyond_every_key(values: dict, using: str) -> bool:
    """A key no column can hold (a request number of 25 digits typed into a URL): the
    ORM answers such a comparison with no row without asking; the database would refuse
    the parameter (SQLite: OverflowError)."""
    low, high = connections[using].ops.integer_field_range("BigIntegerField")
    return any(isinstance(value, int) and not low <= value <= high for value in values.values())


def _adapt(value, connection):
    """The value as the compiled parameters hold it (a time: as the backend stores it)."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
