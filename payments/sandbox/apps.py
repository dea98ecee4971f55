from storefront import sandbox_apps


class KryptoExpressSandboxConfig(sandbox_apps.SandboxAppConfig):
    name = "payments.sandbox"
    label = "kryptoexpress_sandbox"
    verbose_name = "Sandbox: KryptoExpress"
    # Offers the store a link to each payment's control page, where a developer pays by hand.
    dev_hooks = {"payments.dev_hooks.payment_control_url_register": "payments.sandbox.links.sandbox_control_url"}
