"""The signed-in user of a request, remembered in process memory for a few seconds.

Django's `AuthenticationMiddleware` loads the user row on every request of a signed-in visitor
(one query, the dearest part of a cached page such as the catalogue). This middleware does the
same checks — the same `django.contrib.auth.get_user`: backend allowed, user active, session
hash matching the password — and then remembers the verified (user id, backend, session hash)
→ user for `AUTH_USER_CACHE_SECONDS` in this process. Each request gets its own copy of the
user, so a view changing `request.user` changes nothing for anyone else.

It also remembers which session key that verified session had, for the same seconds: a request
carrying it gets its user without reading the session from the cache (a round trip per page;
docs/WEB_SPEED.md). The session itself is still read, lazily, by any view that uses it, and it
is marked as used, so the response still varies on the cookie. A session saved or deleted in
this process (a log-out, a new login, a password change) is forgotten at once.

What the few seconds cost: a log-out, a password change or a deactivation made in *another*
process takes up to that long to reach a session this process has just verified (the browser
that logged out no longer sends the cookie; only a copy of it would still work, that long). In
this process a save or delete of any user forgets everything at once, and a changed session hash
(this session's password change, a new login) is a new key. `AUTH_USER_CACHE_SECONDS=0` turns it
off.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.sessions.models import Session
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

MAX_REMEMBERED = 4096


@dataclass(frozen=True)
class _Remembered:
    user: object
    until: float


_remembered: dict[tuple[str, str, str], _Remembered] = {}
_by_session_key: dict[str, _Remembered] = {}
_lock = threading.Lock()


def forget_remembered_users(**kwargs) -> None:
    """Drop every remembered user of this process (any user saved or deleted here)."""
    _remembered.clear()
    _by_session_key.clear()


def forget_remembered_session(*, instance, **kwargs) -> None:
    """A session saved or deleted in this process (log-out, login, password change) is read again."""
    _by_session_key.pop(instance.session_key, None)


def request_user(request: HttpRequest):
    """`django.contrib.auth.get_user(request)`, answered from memory for a verified session."""
    seconds = getattr(settings, "AUTH_USER_CACHE_SECONDS", 0)
    session = request.session
    now = time.monotonic()
    session_key = session.session_key  # the cookie's value: reading it loads nothing
    if seconds > 0 and session_key:
        known = _by_session_key.get(session_key)
        if known is not None and known.until > now:
            session.accessed = True  # the answer depends on the session: the response varies on it
            return copy.copy(known.user)
    try:
        key = (str(session[SESSION_KEY]), str(session[BACKEND_SESSION_KEY]), str(session[HASH_SESSION_KEY]))
    except KeyError:  # anonymous (or a session Django itself will refuse): nothing to remember
        return auth.get_user(request)
    remembered = _remembered.get(key) if seconds > 0 else None
    if remembered is not None and remembered.until > now:
        user = copy.copy(remembered.user)
    else:
        user = auth.get_user(request)  # every check Django makes; flushes a session that fails them
        if not (seconds > 0 and user.is_authenticated and str(user.pk) == key[0]):
            return user
        remembered = _Remembered(user=copy.copy(user), until=now + seconds)
        with _lock:
            if len(_remembered) >= MAX_REMEMBERED:
                _remembered.clear()
            _remembered[key] = remembered
    if session.session_key == session_key:  # still the session the cookie named
        with _lock:
            if len(_by_session_key) >= MAX_REMEMBERED:
                _by_session_key.clear()
            _by_session_key[session_key] = remembered
    return user


def _lazy_user(request: HttpRequest):
    if not hasattr(request, "_cached_user"):
        request._cached_user = request_user(request)
    return request._cached_user


class RememberedUserAuthenticationMiddleware(AuthenticationMiddleware):
    """Django's authentication middleware with `request.user` from `request_user`."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _lazy_user(request))


post_save.connect(forget_remembered_users, sender=settings.AUTH_USER_MODEL, dispatch_uid="forget_remembered_users")
post_delete.connect(forget_remembered_users, sender=settings.AUTH_USER_MODEL, dispatch_uid="forget_remembered_user")
post_save.connect(forget_remembered_session, sender=Session, dispatch_uid="forget_remembered_session_saved")
post_delete.connect(forget_remembered_session, sender=Session, dispatch_uid="forget_remembered_session_deleted")
