"""Password-reset mail goes through Celery, so the response never reveals whether an account exists.

Looking the address up, making the token, rendering and sending the mail all happen in the
worker (`accounts.tasks.send_password_reset`, which calls
`accounts.forms.password_reset_send`). The web request does the same small thing for
every address: validate the form, read the host it was asked on, enqueue one task.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.contrib.sites.shortcuts import get_current_site

logger = logging.getLogger("accounts.password_reset")

# The worker-side task (accounts/tasks.py), enqueued by name: this module sits below the tasks.
PASSWORD_RESET_TASK = "accounts.tasks.send_password_reset"  # noqa: S105 (a task name, not a password)


def password_reset_enqueue(
    *,
    email: str,
    request,
    use_https: bool,
    subject_template_name: str,
    email_template_name: str,
    html_email_template_name: str | None = None,
    from_email: str | None = None,
    extra_email_context: dict | None = None,
) -> None:
    """Queue the reset mail for `email` (sent only if it belongs to an account that may reset)."""
    site = get_current_site(request)  # the ALLOWED_HOSTS-checked host the customer used
    try:
        current_app.tasks[PASSWORD_RESET_TASK].delay(
            email=email,
            domain=site.domain,
            use_https=use_https,
            subject_template_name=subject_template_name,
            email_template_name=email_template_name,
            html_email_template_name=html_email_template_name,
            from_email=from_email,
            extra_email_context=dict(extra_email_context or {}),
        )
    except Exception as exc:  # the page must look the same; staff see the broker outage elsewhere
        logger.error("password reset mail not queued (%s)", type(exc).__name__)
