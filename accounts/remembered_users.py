"""The signed-in user of a request, remembered in process memory for a few seconds.

Django's `AuthenticationMiddleware` loads the user row on every request of a signed-in visitor
(one query, the dearest part of a cached page such as the catalogue). This middleware does the
same checks — the same `django.contrib.auth.get_user`: backend allowed, user active, session
hash matching the password — and then remembers the verified (user id, backend, session hash)
→ user for `AUTH_USER_CACHE_SECONDS` in this process. Each request gets its own copy of the
user, so a view changing `request.user` changes nothing for anyone else.

What the few seconds cost: a password change or a deactivation made in *another* process takes
up to that long to reach a session this process has just verified. In this process a save or
delete of any user forgets everything at once, and a changed session hash (this session's
password change, a new login) is a new key. `AUTH_USER_CACHE_SECONDS=0` turns it off.
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
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

MAX_REMEMBERED = 4096


@dataclass(frozen=True)
class _Remembered:
    user: object
    until: float


_remembered: dict[tuple[str, str, str], _Remembered] = {}
_lock = threading.Lock()


def forget_remembered_users(**kwargs) -> None:
    """Drop every remembered user of this process (any user saved or deleted here)."""
    _remembered.clear()


def request_user(request: HttpRequest):
    """`django.contrib.auth.get_user(request)`, answered from memory for a verified session."""
    seconds = getattr(settings, "AUTH_USER_CACHE_SECONDS", 0)
    session = request.session
    try:
        key = (str(session[SESSION_KEY]), str(session[BACKEND_SESSION_KEY]), str(session[HASH_SESSION_KEY]))
    except KeyError:  # anonymous (or a session Django itself will refuse): nothing to remember
        return auth.get_user(request)
    now = time.monotonic()
    remembered = _remembered.get(key) if seconds > 0 else None
    if remembered is not None and remembered.until > now:
        return copy.copy(remembered.user)
    user = auth.get_user(request)  # every check Django makes; flushes a session that fails them
    if seconds > 0 and user.is_authenticated and str(user.pk) == key[0]:
        with _lock:
            if len(_remembered) >= MAX_REMEMBERED:
                _remembered.clear()
            _remembered[key] = _Remembered(user=copy.copy(user), until=now + seconds)
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
