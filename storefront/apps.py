from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    name = "storefront"
    verbose_name = "Token Store"

    def ready(self) -> None:
        from storefront import checks  # noqa: F401  (registers the configuration checks)
