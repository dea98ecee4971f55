"""Celery tasks for orders (autodiscovered as `orders.tasks`).

Each task has an explicit name (`orders.tasks.<name>`) so beat schedules and queued messages
survive moving code between the modules below.
"""

from orders.tasks.fulfilment import *  # noqa: F403
from orders.tasks.mail import *  # noqa: F403
from orders.tasks.payments import *  # noqa: F403
from orders.tasks.staff import *  # noqa: F403
