"""Seed the four catalogue packages (docs/ARCHITECTURE.md, "Pricing"). Idempotent; staff edit them in the admin.

The data is written out here rather than imported, so this migration keeps meaning what it meant
when it was written. `manage.py seed_packages` restores the same rows after a flush.
"""

from django.db import migrations

SEED_PACKAGES = (
    # (name, token_count, position)
    ("Starter", 1_000, 10),
    ("Standard", 5_000, 20),
    ("Professional", 10_000, 30),
    ("Enterprise", 20_000, 40),
)


def seed_packages(apps, schema_editor):
    TokenPackage = apps.get_model("orders", "TokenPackage")
    for name, token_count, position in SEED_PACKAGES:
        if not TokenPackage.objects.filter(name=name).exists():
            TokenPackage.objects.create(name=name, token_count=token_count, position=position, active=True)


def unseed_packages(apps, schema_editor):
    # Only rows still exactly as seeded; anything staff changed stays.
    TokenPackage = apps.get_model("orders", "TokenPackage")
    for name, token_count, position in SEED_PACKAGES:
        TokenPackage.objects.filter(name=name, token_count=token_count, position=position).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0004_staff_filter_indexes"),
    ]

    operations = [
        migrations.RunPython(seed_packages, unseed_packages),
    ]
