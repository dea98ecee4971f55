"""Account tasks (autodiscovered as `accounts.tasks`)."""

from __future__ import annotations

from celery import shared_task

from accounts.forms import password_reset_send

__all__ = ["send_password_reset"]


@shared_task(name="accounts.tasks.send_password_reset", ignore_result=True, soft_time_limit=60, time_limit=90)
def send_password_reset(**kwargs) -> None:
    """Look the address up and mail the reset link (see accounts/password_reset.py and `password_reset_send`)."""
    password_reset_send(**kwargs)
