from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        # Register the Celery tasks in every process (web included): services and the
        # transition effects enqueue them by name and never import them.
        import orders.tasks  # noqa: F401
        from accounts.pending_order import pending_order_reader_register
        from orders.pending_order import pending_order_read

        pending_order_reader_register(pending_order_read)
        from orders import catalogue_signals  # noqa: F401 - connects the catalogue version receivers
