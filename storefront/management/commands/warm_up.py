"""Fill the catalogue and the rate cache right after start-up.

In sandbox mode the imitation services are served by the web process itself, so this waits
until the web server answers before syncing; `make run` starts it next to gunicorn.
"""

from __future__ import annotations

import time

import requests
from django.conf import settings
from django.core.management.base import BaseCommand

from openrouter.catalogue_sync import catalogue_sync
from payments.rates import refresh_rates


class Command(BaseCommand):
    help = "Wait for the web server (sandbox mode), then sync the model catalogue and crypto rates."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--wait", type=float, default=60.0, help="Seconds to wait for the web server.")

    def handle(self, *args, wait: float = 60.0, **options) -> None:
        if settings.SANDBOX:
            self._wait_for_web(wait)
        try:
            result = catalogue_sync()
            self.stdout.write(f"Catalogue synced: {result}")
        except Exception as exc:  # start-up must go on; beat retries the sync
            self.stderr.write(f"Catalogue sync failed ({type(exc).__name__}); beat will retry.")
        try:
            rates = refresh_rates()
            self.stdout.write("Rates: " + ", ".join(f"{code}={rate}" for code, rate in sorted(rates.items())))
        except Exception as exc:  # start-up must go on
            self.stderr.write(f"Rate refresh failed ({type(exc).__name__}); beat will retry.")

    def _wait_for_web(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        url = settings.SITE_URL + "/sandbox/openrouter/api/v1/models"
        while time.monotonic() < deadline:
            try:
                requests.get(url, timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.5)
        self.stderr.write(f"The web server did not answer within {seconds:.0f} s.")
