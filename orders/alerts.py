"""Staff alerts. (Simple first version; the staff-operations work adds throttling.)"""

from __future__ import annotations

import logging

from django.core.mail import mail_admins

logger = logging.getLogger("orders.alerts")


def alert_staff(*, kind: str, subject: str, body: str, urgent: bool = False) -> None:
    """Email the staff (ADMINS). `kind` groups alerts for throttling; never put a secret in body."""
    prefix = "URGENT: " if urgent else ""
    logger.warning("staff_alert kind=%s subject=%s", kind, subject)
    mail_admins(prefix + subject, body, fail_silently=True)
