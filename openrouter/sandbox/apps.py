from storefront import sandbox_apps


class OpenRouterSandboxConfig(sandbox_apps.SandboxAppConfig):
    name = "openrouter.sandbox"
    label = "openrouter_sandbox"
    verbose_name = "Sandbox: OpenRouter"
    # Lets `sync_models --in-process` reach this sandbox before the web server is up.
    dev_hooks = {"openrouter.dev_hooks.in_process_client_register": "openrouter.sandbox.transport.in_process_client"}
