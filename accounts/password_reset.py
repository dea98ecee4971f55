"""Password-reset mail goes through Celery, so the response never reveals whether an account exists.

Looking the address up, making the token, rendering and sending the mail all happen in the
worker (`accounts.tasks.send_password_reset`). The web request does the same small thing for
every address: validate the form, read the host it was asked on, enqueue one task.
"""

from __future__ import annotations

import logging

from django.contrib.sites.shortcuts import get_current_site

logger = logging.getLogger("accounts.password_reset")


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
    from accounts.tasks import send_password_reset

    site = get_current_site(request)  # the ALLOWED_HOSTS-checked host the customer used
    try:
        send_password_reset.delay(
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


def password_reset_send(
    *,
    email: str,
    domain: str,
    use_https: bool,
    subject_template_name: str,
    email_template_name: str,
    html_email_template_name: str | None = None,
    from_email: str | None = None,
    extra_email_context: dict | None = None,
) -> None:
    """In the worker: find the account(s) for `email` and send each a one-use reset link."""
    from django.contrib.auth.forms import PasswordResetForm

    from accounts.forms import EmailPasswordResetForm

    form = EmailPasswordResetForm(data={"email": email})
    if not form.is_valid():
        return
    PasswordResetForm.save(
        form,
        domain_override=domain,
        use_https=use_https,
        subject_template_name=subject_template_name,
        email_template_name=email_template_name,
        html_email_template_name=html_email_template_name,
        from_email=from_email,
        extra_email_context=extra_email_context,
    )
