"""Packages become shares (step 3 of 3): the share is required and the fixed token count goes."""

from decimal import Decimal

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0009_i10_package_share_data"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="tokenpackage", name="package_min_tokens"),
        migrations.AlterField(
            model_name="tokenpackage",
            name="share",
            field=models.DecimalField(
                decimal_places=4,
                help_text="Fraction of the largest order the $ cap allows for each model: 1 = the maximum, 0.05 = a twentieth.",
                max_digits=5,
                validators=[
                    django.core.validators.MinValueValidator(Decimal("0.0001")),
                    django.core.validators.MaxValueValidator(Decimal("1")),
                ],
                verbose_name="share of the maximum",
            ),
        ),
        migrations.RemoveField(model_name="tokenpackage", name="token_count"),
        migrations.AlterModelOptions(name="tokenpackage", options={"ordering": ["position", "share"]}),
        migrations.AlterField(
            model_name="tokenpackage",
            name="position",
            field=models.PositiveSmallIntegerField(default=0, help_text="Lower comes first.", verbose_name="sort order"),
        ),
        migrations.AlterField(
            model_name="tokenpackage",
            name="active",
            field=models.BooleanField(default=True, help_text="Hidden packages are not shown.", verbose_name="visible"),
        ),
        migrations.AddConstraint(
            model_name="tokenpackage",
            constraint=models.CheckConstraint(
                condition=models.Q(("share__gt", 0), ("share__lte", 1)), name="package_share_range"
            ),
        ),
    ]
