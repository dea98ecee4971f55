from django.contrib import admin
from django.urls import include, path

from storefront.checks import sandbox_permitted
from storefront.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("", include("storefront.pages")),
    path("", include("orders.urls")),
]

if sandbox_permitted():
    # The local imitations of OpenRouter and KryptoExpress exist only in sandbox mode, and only
    # when nothing real is configured beside them (storefront/checks.py).
    urlpatterns += [
        path("sandbox/openrouter/api/v1/", include("openrouter.sandbox.urls")),
        path("sandbox/kryptoexpress/", include("payments.sandbox.urls")),
    ]
