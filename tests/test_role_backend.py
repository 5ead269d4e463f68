"""The session's user comes with its permissions in one query (accounts_app.backends)."""

from __future__ import annotations

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts_app import roles
from accounts_app.backends import RoleBackend

pytestmark = pytest.mark.django_db


def django_permissions(user) -> set[str]:
    """What Django's own backend finds, asked the slow way on a fresh copy."""
    fresh = type(user).objects.get(pk=user.pk)
    return ModelBackend().get_all_permissions(fresh)


def test_a_users_own_and_group_permissions_come_with_the_user_in_one_query(make_user):
    user = make_user("carol", roles.APPROVERS, roles.AUDITORS)
    user.user_permissions.add(Permission.objects.get(codename="change_group"))

    with CaptureQueriesContext(connection) as queries:
        loaded = RoleBackend().get_user(user.pk)
        asked = (
            loaded.has_perm(roles.APPROVE_REQUEST),
            loaded.has_perm("auth.change_group"),
            loaded.has_perm("auth.delete_group"),
        )

    assert len(queries) == 1
    assert asked == (True, True, False)
    assert loaded.get_all_permissions() == django_permissions(user)
    assert "auth.change_group" in loaded.get_all_permissions()


def test_a_user_without_permissions_has_none_and_a_removed_role_is_gone_at_once(make_user):
    user = make_user("frank", roles.REQUESTERS)
    assert RoleBackend().get_user(user.pk).has_perm(roles.REQUEST_ACCOUNT)

    user.groups.remove(Group.objects.get(name=roles.REQUESTERS))

    loaded = RoleBackend().get_user(user.pk)
    assert loaded.get_all_permissions() == set() == django_permissions(user)
    assert not loaded.has_perm(roles.REQUEST_ACCOUNT)


def test_an_inactive_or_unknown_user_has_no_session_user(make_user):
    user = make_user("gone", roles.APPROVERS)
    user.is_active = False
    user.save(update_fields=["is_active"])

    assert RoleBackend().get_user(user.pk) is None
    assert RoleBackend().get_user(user.pk + 1000) is None


def test_a_superuser_has_every_permission(make_user):
    user = make_user("root", superuser=True)

    loaded = RoleBackend().get_user(user.pk)

    assert loaded.get_all_permissions() == django_permissions(user)
    assert len(loaded.get_all_permissions()) == Permission.objects.count()


def test_each_user_gets_their_own_permissions_from_the_query_compiled_once(make_user):
    """The query is compiled once per process (selectors.prepared): each run binds its
    own user, whether the session gave the key as a number or as text."""
    approver = make_user("bea", roles.APPROVERS)
    requester = make_user("ron", roles.REQUESTERS)

    for user, key in [
        (approver, approver.pk),
        (requester, str(requester.pk)),
        (approver, str(approver.pk)),
    ]:
        loaded = RoleBackend().get_user(key)
        assert loaded.pk == user.pk
        assert loaded.get_all_permissions() == django_permissions(user)
