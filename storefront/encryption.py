"""Encryption at rest for secrets the store must keep (delivered keys, callback secrets).

`FIELD_ENCRYPTION_KEYS` holds Fernet keys, newest first: the first encrypts, all decrypt, so a
key is rotated by prepending a new one, running `manage.py rotate_encryption`, then dropping
the old one.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

__all__ = ["InvalidToken", "decrypt", "encrypt", "rotate"]


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return _current().decrypt(token.encode()).decode()


def rotate(token: str) -> str:
    """Re-encrypt under the newest key (used by the rotation command)."""
    return _current().rotate(token.encode()).decode()
