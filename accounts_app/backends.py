"""Authentication backend that loads a user's permissions in one query.

Django's ModelBackend asks twice (the user's own permissions, then their
groups'); every page checks a permission for the navigation, so one query saved
here is one query saved on every page.
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q

from accounts_app import policy


class RoleBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        # A password sign-in while LOCAL_LOGIN is off: break-glass superusers only. Not in
        # user_can_authenticate, which get_user() also asks for every IdP user's session.
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and not policy.may_sign_in_locally(user):
            return None
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
            user_obj._perm_cache = {
                f"{app_label}.{codename}"
                for app_label, codename in permissions.values_list(
                    "content_type__app_label", "codename"
                )
            }
        return user_obj._perm_cache
