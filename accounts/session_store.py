"""Django's cached-database sessions, refusing a session cookie that Django could never have made.

Django accepts any cookie value of 8 characters or more as a session key and looks it up: in the
cache, then in the database. PostgreSQL refuses a NUL character in a query, so a cookie holding
one turned every page into a 500 for that visitor. Django makes its keys from lowercase letters
and digits (`VALID_KEY_CHARS`), at most 40 long (the column); anything else is no session at all:
an anonymous visitor, with nothing looked up.
"""

from __future__ import annotations

from django.contrib.sessions.backends import cached_db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS

_KEY_CHARS = frozenset(VALID_KEY_CHARS)
_MAX_KEY_LENGTH = 40


class SessionStore(cached_db.SessionStore):
    def _validate_session_key(self, key: str | None) -> bool:
        return bool(key) and 8 <= len(key) <= _MAX_KEY_LENGTH and _KEY_CHARS.issuperset(key)
