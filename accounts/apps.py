from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # Register the Celery tasks in every process (web included): the password-reset form
        # enqueues its task by name and never imports it.
        import accounts.tasks  # noqa: F401
