from django.apps import AppConfig


class OpenRouterSandboxConfig(AppConfig):
    name = "openrouter.sandbox"
    label = "openrouter_sandbox"
    verbose_name = "Sandbox: OpenRouter"
