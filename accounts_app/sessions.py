"""The database session store, writing an existing session in one statement."""

from __future__ import annotations

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import UpdateError
from django.db import DatabaseError, connections, router


class SessionStore(db.SessionStore):
    """Django's own, but an update outside any transaction is one UPDATE, not a transaction.

    Django wraps every save in atomic(): a savepoint, so that a failed insert does not
    spoil the caller's transaction. An UPDATE on its own is atomic already; on SQLite the
    block cost BEGIN IMMEDIATE and COMMIT around it, each time a session changes (a
    language chosen, the re-authentication time, a flash message too long for its cookie).
    """

    def save(self, must_create=False):
        using = router.db_for_write(self.model)
        if must_create or self.session_key is None or not connections[using].get_autocommit():
            return super().save(must_create=must_create)
        obj = self.create_model_instance(self._get_session())
        try:
            obj.save(force_update=True, using=using)
        except DatabaseError as error:  # the row is gone: signed out meanwhile
            raise UpdateError from error
