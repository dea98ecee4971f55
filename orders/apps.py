from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from orders import catalogue_signals  # noqa: F401 - connects the catalogue version receivers
