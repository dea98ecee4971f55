"""``manage.py sync_models``: refresh the OpenRouter model catalogue now."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from openrouter.catalogue_sync import catalogue_sync
from openrouter.dev_hooks import in_process_client


class Command(BaseCommand):
    help = "Sync AIModel rows from OpenRouter's GET /models (the same as the beat task)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--in-process",
            action="store_true",
            help="Sandbox only: serve the request from this process's sandbox instead of over HTTP "
            "(lets `make run` seed the catalogue before the web server is up).",
        )
        parser.add_argument(
            "--allow-failure",
            action="store_true",
            help="Exit 0 even when the sync fails (the last good catalogue is kept either way).",
        )

    def handle(self, *args, in_process: bool = False, allow_failure: bool = False, **options):
        client = None
        if in_process:
            client = in_process_client()
            if client is None:
                raise CommandError("--in-process needs the OpenRouter sandbox (sandbox mode).")
        result = catalogue_sync(client=client)
        if not result.ok:
            message = f"Catalogue sync failed, last good catalogue kept: {result.error}"
            if allow_failure:
                self.stderr.write(self.style.WARNING(message))
                return
            raise CommandError(message)
        self.stdout.write(
            self.style.SUCCESS(
                f"Catalogue synced: {result.seen} models ({result.created} new, {result.updated} updated, "
                f"{result.gone} gone, {result.unsellable} not sellable)."
            )
        )
