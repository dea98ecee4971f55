from django.apps import AppConfig


class OpenRouterSandboxConfig(AppConfig):
    name = "openrouter.sandbox"
    label = "openrouter_sandbox"
    verbose_name = "Sandbox: OpenRouter"

    def ready(self) -> None:
        # Installed only in sandbox mode: let `sync_models --in-process` reach this sandbox.
        from openrouter.dev_hooks import in_process_client_register
        from openrouter.sandbox.transport import in_process_client

        in_process_client_register(in_process_client)
