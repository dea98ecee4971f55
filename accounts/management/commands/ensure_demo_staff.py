"""`manage.py ensure_demo_staff`: a staff login for sandbox demos (run by `make run`)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.services import DemoStaffOutcome, demo_staff_ensure


class Command(BaseCommand):
    help = (
        "Sandbox mode only: if no staff account exists, create admin@example.com with a random "
        "password and print it once. Safe to run any number of times."
    )

    def handle(self, *args, **options) -> None:
        result = demo_staff_ensure()
        if result.outcome is DemoStaffOutcome.NOT_SANDBOX:
            self.stdout.write(
                "Not in sandbox mode: no demo staff account is created (use `manage.py createsuperuser`)."
            )
        elif result.outcome is DemoStaffOutcome.EXISTS:
            self.stdout.write(
                f"A staff account already exists ({result.email}); its password is not shown again. "
                f"Forgot it? Run `manage.py changepassword {result.email}`."
            )
        else:
            self.stdout.write(self.style.SUCCESS("Demo staff account created (sandbox mode):"))
            self.stdout.write(f"  Admin:    {settings.SITE_URL}/admin/")
            self.stdout.write(f"  Email:    {result.email}")
            self.stdout.write(f"  Password: {result.password}")
            self.stdout.write("This password is shown only once.")
