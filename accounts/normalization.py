"""One spelling per email address, so look-alike spellings can never become a second account.

Used everywhere an email enters the store (signup, login, password reset, the admin, the
per-email login throttle), so that the same person always lands on the same row and the same
rate-limit bucket.
"""

from __future__ import annotations

import unicodedata


def normalize_email(raw: str | None) -> str:
    """Return the canonical spelling of an email address, without validating it.

    - NFKC folds compatibility look-alikes onto their plain letters (fullwidth `ａｄｍｉｎ`, the Kelvin
      sign `K`), so they collide with the ASCII address instead of creating a twin account.
    - Lower-case, as the store treats addresses case-insensitively.
    - An internationalised domain is stored in its ASCII (punycode) form, so a homograph such as a
      Cyrillic `а` in `exаmple.com` is visibly a different domain (`xn--...`).

    Anything that cannot be normalised is returned merely lower-cased; email validation rejects it.
    """
    value = unicodedata.normalize("NFKC", raw or "").strip()
    local, at, domain = value.rpartition("@")
    if not at:
        return value.lower()
    domain = domain.lower()
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii").lower()
        except UnicodeError:
            return value.lower()
    return f"{local.lower()}@{domain}"
