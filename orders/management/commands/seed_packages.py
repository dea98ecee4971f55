"""`manage.py seed_packages`: make sure the four catalogue packages exist (run by `make run`).

A package is a share of each model's largest order under the cap (the seed's 1 : 5 : 10 : 20,
Enterprise "the maximum allowed"); `orders.pricing.package_token_counts` sizes it per model.

Idempotent: a package is created only when none with its name exists, and existing rows are
never changed, so staff edits in the admin survive. To hide a package, untick "active" rather
than deleting it (a deleted seed package comes back on the next run).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction

from orders.models import TokenPackage

SEED_PACKAGES: tuple[tuple[str, Decimal, int], ...] = (
    # (name, share of the maximum, position) — migration 0005's rows as 0009 converts them.
    ("Starter", Decimal("0.05"), 10),
    ("Standard", Decimal("0.25"), 20),
    ("Professional", Decimal("0.5"), 30),
    ("Enterprise", Decimal("1"), 40),
)


def packages_seed() -> list[str]:
    """Create the seed packages that are missing; return the names created."""
    created = []
    with transaction.atomic():
        existing = set(
            TokenPackage.objects.filter(name__in=[name for name, _, _ in SEED_PACKAGES]).values_list("name", flat=True)
        )
        for name, share, position in SEED_PACKAGES:
            if name not in existing:
                TokenPackage.objects.create(name=name, share=share, position=position, active=True)
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
