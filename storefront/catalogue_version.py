"""The catalogue version: one token in the shared cache that changes whenever what a customer
sees on the catalogue may have changed.

Pages that show prices keep what they computed in process memory and reuse it while the token
is unchanged (see `orders.catalogue_snapshot`). Whatever changes the catalogue's data calls
`catalogue_version_bump()`: the catalogue sync, staff saves and deletes of models and packages,
staff bulk actions on them. (The crypto rates carry their own `fetched_at`, which readers add to
the version themselves, so a refresh or an expiry of the rates also counts as a new version.)

Readers in other processes may check the token at most every `CATALOGUE_RECHECK_SECONDS`
(default 1 s): a shared-cache round trip per request was a third of a cached page's cost, and a
price a second old is harmless because checkout recomputes and asks to confirm a changed one. A
bump in this process is seen here at once (`local_epoch()`).

The token is random, not a counter: a cache that loses the key (eviction, restart, flush) just
makes every reader start a new version, never reuse an old one. It lives here, in the lowest
layer, so the adapters (which may not import `orders`) can bump it.
"""

from __future__ import annotations

import logging
import secrets

from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger("storefront.catalogue_version")

CATALOGUE_VERSION_KEY = "catalogue:version:v1"


def _new_token() -> str:
    return secrets.token_hex(8)


def catalogue_version_bump() -> str:
    """Start a new catalogue version now and once more when the current transaction commits.

    Bumping now invalidates at once (tests, and readers in this transaction); bumping again on
    commit guarantees that no reader can have rebuilt its copy from the data as it was before the
    commit and kept it under the new token. Outside a transaction both happen immediately.
    A cache outage is logged, never raised: readers then skip their caches (they cannot read a version).
    """
    token = _store_new_token()
    transaction.on_commit(_store_new_token)
    return token


_local_epoch = 0


def local_epoch() -> int:
    """How many times this process has bumped or seen a rates refresh: readers here re-check at once."""
    return _local_epoch


def catalogue_version_local_changed() -> None:
    """Something this process wrote changes what the catalogue shows (e.g. new crypto rates)."""
    global _local_epoch
    _local_epoch += 1


def _store_new_token() -> str:
    catalogue_version_local_changed()
    token = _new_token()
    try:
        cache.set(CATALOGUE_VERSION_KEY, token, timeout=None)
    except Exception:  # the caller's change must not fail because the cache is down
        logger.warning("catalogue version bump failed: cache unavailable")
    return token


def catalogue_version_from(value: object) -> str:
    """The token read from the cache, or a new one stored when the key is missing.

    Readers fetch the key together with other keys (one round trip) and pass the value here.
    `cache.add` makes concurrent readers of a missing key agree on one token.
    """
    if isinstance(value, str) and value:
        return value
    token = _new_token()
    if cache.add(CATALOGUE_VERSION_KEY, token, timeout=None):
        return token
    stored = cache.get(CATALOGUE_VERSION_KEY)
    return stored if isinstance(stored, str) and stored else token


def catalogue_version() -> str:
    """The current catalogue version token (raises if the cache is down; callers then skip caching)."""
    return catalogue_version_from(cache.get(CATALOGUE_VERSION_KEY))
