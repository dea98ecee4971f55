from django.core.management.base import BaseCommand

from storefront.schedules import schedules_install


class Command(BaseCommand):
    help = "Install the store's periodic tasks into django-celery-beat (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--reset", action="store_true", help="Restore intervals and re-enable tasks.")

    def handle(self, *args, reset: bool = False, **options) -> None:
        report = schedules_install(reset=reset)
        self.stdout.write(
            f"Periodic tasks: {len(report.created)} created, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged."
        )
