"""Account writes. Views parse the form and call one of these."""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.views.decorators.debug import sensitive_variables

from accounts.models import User


class EmailTaken(Exception):
    """An account with this (normalised) email already exists."""


@sensitive_variables("password")
def account_register(*, email: str, password: str) -> User:
    """Create a customer account from an already validated email and password.

    The database's case-insensitive unique constraint is the final word: a concurrent signup
    with the same address (a double click, a race) becomes `EmailTaken`, never a second account.
    """
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password)
    except IntegrityError as exc:
        raise EmailTaken(email) from exc


DEMO_STAFF_EMAIL = "admin@example.com"


class DemoStaffOutcome(enum.Enum):
    CREATED = "created"
    EXISTS = "exists"
    NOT_SANDBOX = "not_sandbox"


@dataclass(frozen=True)
class DemoStaffResult:
    outcome: DemoStaffOutcome
    email: str | None = None
    password: str | None = field(default=None, repr=False)


def demo_staff_ensure() -> DemoStaffResult:
    """Give a sandbox demo a way into the admin, without ever inventing a login in production.

    Idempotent: once any staff account exists nothing changes and no password is returned again
    (the one printed at creation is the only copy). A leftover non-staff `admin@example.com` in the
    sandbox database is promoted and given a fresh password rather than left blocking the address.
    """
    if not settings.SANDBOX:
        return DemoStaffResult(DemoStaffOutcome.NOT_SANDBOX)
    existing = User.objects.filter(is_staff=True).order_by("pk").first()
    if existing is not None:
        return DemoStaffResult(DemoStaffOutcome.EXISTS, email=existing.email)
    password = secrets.token_urlsafe(15)
    try:
        with transaction.atomic():
            user = User.objects.select_for_update().filter(email=DEMO_STAFF_EMAIL).first()
            if user is None:
                user = User.objects.create_superuser(email=DEMO_STAFF_EMAIL, password=password)
            elif user.is_staff:  # promoted by a concurrent run a moment ago
                return DemoStaffResult(DemoStaffOutcome.EXISTS, email=user.email)
            else:
                user.is_staff = user.is_superuser = user.is_active = True
                user.set_password(password)
                user.save(update_fields=["is_staff", "is_superuser", "is_active", "password"])
    except IntegrityError:  # a concurrent run created it first; its password was printed there
        return DemoStaffResult(DemoStaffOutcome.EXISTS, email=DEMO_STAFF_EMAIL)
    return DemoStaffResult(DemoStaffOutcome.CREATED, email=user.email, password=password)
