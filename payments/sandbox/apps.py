from django.apps import AppConfig


class KryptoExpressSandboxConfig(AppConfig):
    name = "payments.sandbox"
    label = "kryptoexpress_sandbox"
    verbose_name = "Sandbox: KryptoExpress"

    def ready(self) -> None:
        # Installed only in sandbox mode: offer the store a link to each payment's control page.
        from payments.dev_hooks import payment_control_url_register
        from payments.sandbox.links import sandbox_control_url

        payment_control_url_register(sandbox_control_url)
