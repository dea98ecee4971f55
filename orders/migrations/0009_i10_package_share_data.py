"""Packages become shares (step 2 of 3): each row's token count as a share of the largest one.

The seed's 1,000 / 5,000 / 10,000 / 20,000 tokens, with 20,000 "the maximum allowed", become
0.05 / 0.25 / 0.5 / 1 — the same proportions, now applied to every model's own maximum.
Rows staff added keep their proportion to the largest package too. Going back writes token
counts against 20,000, the seed's maximum.
"""

from decimal import ROUND_FLOOR, Decimal

from django.db import migrations

SEED_MAXIMUM_TOKENS = 20_000
SMALLEST_SHARE = Decimal("0.0001")


def counts_to_shares(apps, schema_editor):
    TokenPackage = apps.get_model("orders", "TokenPackage")
    packages = list(TokenPackage.objects.all())
    if not packages:
        return
    largest = max(package.token_count for package in packages)
    for package in packages:
        share = (Decimal(package.token_count) / Decimal(largest)).quantize(SMALLEST_SHARE, rounding=ROUND_FLOOR)
        package.share = max(share, SMALLEST_SHARE)
    TokenPackage.objects.bulk_update(packages, ["share"])


def shares_to_counts(apps, schema_editor):
    TokenPackage = apps.get_model("orders", "TokenPackage")
    packages = list(TokenPackage.objects.all())
    for package in packages:
        package.token_count = max(100, int(package.share * SEED_MAXIMUM_TOKENS))
    TokenPackage.objects.bulk_update(packages, ["token_count"])


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0008_i10_package_share"),
    ]

    operations = [
        migrations.RunPython(counts_to_shares, shares_to_counts),
    ]
