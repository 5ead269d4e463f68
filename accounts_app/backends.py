"""Authentication backend that loads a user's permissions with the user.

Django's ModelBackend reads the user, then asks twice more (the user's own
permissions, then their groups'); every page checks a permission for the
navigation, so here a session's user comes with its permissions in one query,
and a query saved here is one saved on every page. That query is compiled once per
process (selectors.prepared): built and compiled on every request, it cost more CPU
than the query it saved.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import OuterRef, Q, StringAgg, Subquery, Value
from django.db.models.functions import Concat

from accounts_app import policy
from accounts_app.selectors.prepared import Prepared


class RoleBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        # A password sign-in while LOCAL_LOGIN is off: break-glass superusers only. Not in
        # user_can_authenticate, which get_user() also asks for every IdP user's session.
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and not policy.may_sign_in_locally(user):
            return None
        return user

    def get_user(self, user_id):
        user_id = get_user_model()._meta.pk.to_python(user_id)
        found = _USER_WITH_PERMISSIONS.rows(None, user_id=user_id)
        user = found[0] if found else None
        if user is None or not self.user_can_authenticate(user):
            return None
        if not user.is_superuser:  # a superuser has every permission: read when asked
            user._perm_cache = _permissions(user.permission_names)
        return user

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            permissions = Permission.objects.all()
            if not user_obj.is_superuser:
                permissions = permissions.filter(
                    Q(user=user_obj) | Q(group__user=user_obj)
                ).distinct()
            user_obj._perm_cache = set(permissions.values_list(_PERMISSION_NAME, flat=True))
        return user_obj._perm_cache


# "app_label.codename", as user.has_perm() asks for a permission.
_PERMISSION_NAME = Concat("content_type__app_label", Value("."), "codename")


def _permission_names():
    """The user's permissions, their own and their groups', as one string (a subquery)."""
    user = OuterRef("pk")
    return (
        Permission.objects.filter(Q(user=user) | Q(group__user=user))
        .order_by()
        # Grouped by a constant: one row, the aggregate of them all.
        .annotate(one=Value(1))
        .values("one")
        .annotate(names=StringAgg(_PERMISSION_NAME, delimiter=Value(" ")))
        .values("names")
    )


def _user_with_permissions(_viewer, *, user_id):
    users = get_user_model()._default_manager
    return users.annotate(permission_names=Subquery(_permission_names())).filter(pk=user_id)


_USER_WITH_PERMISSIONS = Prepared(_user_with_permissions, user_id=int)


def _permissions(names: str | None) -> set[str]:
    # A user with a permission twice (their own and a group's) lists it twice.
    return set(names.split(" ")) if names else set()
