"""Configurations the store refuses to start with (Django system checks).

They run on every `manage.py check`, `migrate` and `runserver` (not only with `--deploy`), so
`make run` and a deployment's migrate step stop with a message naming the setting. Why each
one is refused:

- `FIELD_ENCRYPTION_KEYS` that are not Fernet keys: the first checkout would create a gateway
  payment and then fail to encrypt its callback secret.
- Credentials that are empty or only whitespace: they are missing, whatever the length.
- The sandbox beside anything real: the gateway sandbox's control page "pays" any order without
  authentication, so with a real OpenRouter anyone could receive a real key. The sandbox runs
  only with *both* sandboxes, and with `DEBUG` off only under the explicit
  `SANDBOX_PUBLIC_DEMO` opt-in (a public demo that sells nothing real).
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register

OPENROUTER_SANDBOX_PATH = "/sandbox/openrouter/api/v1"
KRYPTO_EXPRESS_SANDBOX_PATH = "/sandbox/kryptoexpress/api"


def _blank(value: object) -> bool:
    return not str(value or "").strip()


def encryption_key_problems() -> list[Error]:
    from cryptography.fernet import Fernet

    keys = list(getattr(settings, "FIELD_ENCRYPTION_KEYS", []) or [])
    if not keys:
        return [Error("FIELD_ENCRYPTION_KEYS is empty.", hint="Generate one with Fernet.generate_key().",
                      id="storefront.E001")]
    problems = []
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode() if isinstance(key, str) else key)
        except Exception:
            # Never echo the value: it is a secret (or a typo of one).
            problems.append(
                Error(
                    f"FIELD_ENCRYPTION_KEYS entry {position} is not a valid Fernet key.",
                    hint="Each entry must be 32 url-safe base64-encoded bytes, e.g. from "
                    "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`.",
                    id="storefront.E001",
                )
            )
    return problems


def credential_problems() -> list[Error]:
    problems = []
    for name in ("OPENROUTER_API_KEY", "KRYPTO_EXPRESS_API_KEY", "SECRET_KEY"):
        if _blank(getattr(settings, name, "")):
            problems.append(Error(f"{name} is empty or whitespace: it counts as missing.", id="storefront.E002"))
    return problems


def sandbox_problems() -> list[Error]:
    """Why the sandbox may not run with these settings ([] when it is off or safe)."""
    if not settings.SANDBOX:
        return []
    problems = []
    real = {
        "OPENROUTER_API_URL": not str(settings.OPENROUTER_API_URL).rstrip("/").endswith(OPENROUTER_SANDBOX_PATH),
        "OPENROUTER_API_KEY": settings.OPENROUTER_API_KEY != settings.SANDBOX_OPENROUTER_KEY,
        "KRYPTO_EXPRESS_API_URL": not str(settings.KRYPTO_EXPRESS_API_URL)
        .rstrip("/")
        .endswith(KRYPTO_EXPRESS_SANDBOX_PATH),
        "KRYPTO_EXPRESS_API_KEY": settings.KRYPTO_EXPRESS_API_KEY != settings.SANDBOX_KRYPTO_EXPRESS_KEY,
    }
    for name, is_real in real.items():
        if is_real:
            problems.append(
                Error(
                    f"SANDBOX is on but {name} points at a real service: the sandbox runs only with both "
                    "sandboxes (its unauthenticated control page would otherwise hand out real keys).",
                    hint=f"Unset {name}, or turn SANDBOX off.",
                    id="storefront.E003",
                )
            )
    if not settings.DEBUG and not getattr(settings, "SANDBOX_PUBLIC_DEMO", False):
        problems.append(
            Error(
                "SANDBOX is on with DEBUG off: anyone could 'pay' through the sandbox control page.",
                hint="Set SANDBOX=false for a real store, or SANDBOX_PUBLIC_DEMO=true for a public demo "
                "that sells nothing real.",
                id="storefront.E004",
            )
        )
    return problems


def sandbox_permitted() -> bool:
    """Whether the sandboxes (and the gateway's control page) may be routed at all."""
    return bool(settings.SANDBOX) and not sandbox_problems()


@register(Tags.security)
def check_unsafe_configuration(app_configs=None, **kwargs) -> list[Error]:
    return [*encryption_key_problems(), *credential_problems(), *sandbox_problems()]


__all__ = [
    "check_unsafe_configuration",
    "credential_problems",
    "encryption_key_problems",
    "sandbox_permitted",
    "sandbox_problems",
]
