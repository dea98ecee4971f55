from django.db import migrations, models

OLD_RECONCILE_SECONDS = 300
NEW_RECONCILE_SECONDS = 60


def reconcile_every_minute(apps, schema_editor):
    """A deployment still on the old 5-minute default reconciles every minute (staff changes are kept)."""
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    task = PeriodicTask.objects.filter(
        task__in=("orders.tasks.reconcile_fulfilment", "orders.tasks.fulfilment_reconcile"),
        interval__every=OLD_RECONCILE_SECONDS, interval__period="seconds"
    ).first()
    if task is None:
        return
    task.interval, _ = IntervalSchedule.objects.get_or_create(every=NEW_RECONCILE_SECONDS, period="seconds")
    task.save(update_fields=["interval"])


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0011_i12_refunds"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="aitokenorder",
            name="fulfil_lease_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="aitokenorder",
            name="fulfil_lease_owner",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
        migrations.RunPython(reconcile_every_minute, migrations.RunPython.noop),
    ]
