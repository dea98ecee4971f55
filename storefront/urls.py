from django.contrib import admin
from django.urls import include, path

from storefront.checks import sandbox_permitted
from storefront.health import healthz

# The shop's own routes come first: a path that misses an include mounted at "" costs Django an
# exception and a list of what it tried, and the catalogue, the quote API and the status poll are
# the most requested paths there are (docs/WEB_SPEED.md).
urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("", include("orders.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("", include("storefront.pages")),
]

if sandbox_permitted():
    # The local imitations of OpenRouter and KryptoExpress exist only in sandbox mode, and only
    # when nothing real is configured beside them (storefront/checks.py).
    urlpatterns += [
        path("sandbox/openrouter/api/v1/", include("openrouter.sandbox.urls")),
        path("sandbox/kryptoexpress/", include("payments.sandbox.urls")),
    ]
