from django.apps import AppConfig


class KryptoExpressSandboxConfig(AppConfig):
    name = "payments.sandbox"
    label = "kryptoexpress_sandbox"
    verbose_name = "Sandbox: KryptoExpress"
