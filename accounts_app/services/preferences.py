"""The user's preferences: kept in UserPreference, copied into the session.

The session copy lets the time-zone middleware show every page in the user's
time zone without a query.
"""

from __future__ import annotations

from django.conf import settings

from accounts_app.models import UserPreference

TIME_ZONE_KEY = "time_zone"


def session_time_zone(session) -> str:
    return session.get(TIME_ZONE_KEY) or settings.DEFAULT_USER_TIME_ZONE


def preference_load(*, user, session) -> None:
    """At sign-in: the saved preference into the new session."""
    preference = UserPreference.objects.filter(user=user).first()
    if preference is not None:
        session[TIME_ZONE_KEY] = preference.time_zone


def preference_set_time_zone(*, user, session, time_zone: str) -> None:
    UserPreference.objects.update_or_create(user=user, defaults={"time_zone": time_zone})
    session[TIME_ZONE_KEY] = time_zone
