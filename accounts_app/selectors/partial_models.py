"""Models built from the few columns a page shows, the others deferred.

A model built from keyword arguments looks up the default of every field it is not
given; for the instance page's accounts (three models each) that was about a tenth of
the page's time (docs/benchmarks.md, eighth round). from_db() fills the fields by
position instead, as the ORM does with the rows of a query.
"""

from __future__ import annotations

from django.db.models import Model


def model_from_columns(model: type[Model], db: str, columns: dict) -> Model:
    """A saved row of `model` from some of its columns (by attribute name: requester_id),
    the others deferred: reading one later costs a query, which the query-count tests
    would catch."""
    fields = [field.attname for field in model._meta.concrete_fields if field.attname in columns]
    return model.from_db(db, fields, [columns[name] for name in fields])
