"""Celery tasks for orders (autodiscovered as `orders.tasks`; imported by `OrdersConfig.ready`).

Each task has an explicit name, `orders.tasks.<service function it runs>`, so beat schedules
and queued messages survive moving code between the modules below. The names before the
rename (`fulfil_order`, `poll_payments`, ...) stay registered as aliases of the same task
objects, so messages queued by an older release still run; `install_schedules` rewrites beat
entries to the new names.
"""

from celery import current_app

from orders.tasks.fulfilment import *  # noqa: F403
from orders.tasks.fulfilment import fulfilment_reconcile, key_usage_refresh, order_fulfil
from orders.tasks.key_sweep import *  # noqa: F403
from orders.tasks.mail import *  # noqa: F403
from orders.tasks.payments import *  # noqa: F403
from orders.tasks.payments import payments_poll
from orders.tasks.staff import *  # noqa: F403
from orders.tasks.staff import alerts_watchdog

# Python names before the rename, for code that still imports them.
fulfil_order = order_fulfil
poll_payments = payments_poll
reconcile_fulfilment = fulfilment_reconcile
refresh_key_usage = key_usage_refresh
staff_watchdog = alerts_watchdog

RENAMED_TASKS = {
    "orders.tasks.fulfil_order": order_fulfil,
    "orders.tasks.poll_payments": payments_poll,
    "orders.tasks.reconcile_fulfilment": fulfilment_reconcile,
    "orders.tasks.refresh_key_usage": key_usage_refresh,
    "orders.tasks.staff_watchdog": alerts_watchdog,
}


def _register_old_names(sender=None, **kwargs) -> None:
    for old_name, task in RENAMED_TASKS.items():
        sender.tasks[old_name] = task


if current_app.finalized:
    _register_old_names(current_app)
else:
    current_app.on_after_finalize.connect(_register_old_names, weak=False)
