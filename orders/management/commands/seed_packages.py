"""`manage.py seed_packages`: make sure the four catalogue packages exist (run by `make run`).

Idempotent: a package is created only when none with its name exists, and existing rows are
never changed, so staff edits in the admin survive. To hide a package, untick "active" rather
than deleting it (a deleted seed package comes back on the next run).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from orders.models import TokenPackage

SEED_PACKAGES: tuple[tuple[str, int, int], ...] = (
    # (name, token_count, position) — the same rows as migration 0005_seed_packages.
    ("Starter", 1_000, 10),
    ("Standard", 5_000, 20),
    ("Professional", 10_000, 30),
    ("Enterprise", 20_000, 40),
)


def packages_seed() -> list[str]:
    """Create the seed packages that are missing; return the names created."""
    created = []
    with transaction.atomic():
        existing = set(
            TokenPackage.objects.filter(name__in=[name for name, _, _ in SEED_PACKAGES]).values_list("name", flat=True)
        )
        for name, token_count, position in SEED_PACKAGES:
            if name not in existing:
                TokenPackage.objects.create(name=name, token_count=token_count, position=position, active=True)
                created.append(name)
    return created


class Command(BaseCommand):
    help = "Create the Starter/Standard/Professional/Enterprise token packages if they are missing."

    def handle(self, *args, **options) -> None:
        created = packages_seed()
        if created:
            self.stdout.write(self.style.SUCCESS(f"Created packages: {', '.join(created)}."))
        else:
            self.stdout.write("All seed packages already exist.")
