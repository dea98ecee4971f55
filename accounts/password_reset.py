"""Password-reset mail goes through Celery, so the response never reveals whether an account exists.

Looking the address up, making the token, rendering and sending the mail all happen in the
worker (`accounts.tasks.send_password_reset`, which calls
`accounts.forms.password_reset_send`). The web request does the same small thing for
every address: validate the form, read the host it was asked on, enqueue one task.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from celery import current_app
from django.contrib.sites.shortcuts import get_current_site

logger = logging.getLogger("accounts.password_reset")

# The worker-side task (accounts/tasks.py), enqueued by name: this module sits below the tasks.
PASSWORD_RESET_TASK = "accounts.tasks.send_password_reset"  # noqa: S105 (a task name, not a password)


@dataclass(frozen=True)
class ResetMailOptions:
    """How Django's password-reset form was asked to write the mail; carried to the worker as is."""

    use_https: bool
    subject_template_name: str
    email_template_name: str
    html_email_template_name: str | None = None
    from_email: str | None = None
    extra_email_context: dict | None = None


def password_reset_enqueue(*, email: str, request, options: ResetMailOptions) -> None:
    """Queue the reset mail for `email` (sent only if it belongs to an account that may reset)."""
    site = get_current_site(request)  # the ALLOWED_HOSTS-checked host the customer used
    kwargs = {**asdict(options), "extra_email_context": dict(options.extra_email_context or {})}
    try:
        current_app.tasks[PASSWORD_RESET_TASK].delay(email=email, domain=site.domain, **kwargs)
    except Exception as exc:  # the page must look the same; staff see the broker outage elsewhere
        logger.error("password reset mail not queued (%s)", type(exc).__name__)
