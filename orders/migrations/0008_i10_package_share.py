"""Packages become shares of each model's largest order (step 1 of 3: the new column)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0007_key_expires_at"),
    ]

    operations = [
        # Nullable on the way out, so the migrations can be reversed (step 2 refills it).
        migrations.AlterField(
            model_name="tokenpackage",
            name="token_count",
            field=models.PositiveIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="tokenpackage",
            name="share",
            field=models.DecimalField(decimal_places=4, max_digits=5, null=True, verbose_name="share of the maximum"),
        ),
    ]
