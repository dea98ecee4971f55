"""The Celery app. Configuration comes from Django settings (`CELERY_*`)."""

import os

from celery import Celery, signals
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "storefront.settings")

app = Celery("storefront")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(sender=None, **kwargs) -> None:
    """Around each task as around each web request: drop a connection that is broken or too old.

    With CELERY_DB_REUSE_MAX set, Celery no longer closes the connection after every task; this is
    Django's own per-request rule (CONN_MAX_AGE, and a health check before the next query). Tasks
    run eagerly (inside a caller's transaction) are left alone, as Celery's fixup leaves them.
    """
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()
