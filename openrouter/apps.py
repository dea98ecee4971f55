from django.apps import AppConfig


class OpenRouterConfig(AppConfig):
    name = "openrouter"
    verbose_name = "OpenRouter"
