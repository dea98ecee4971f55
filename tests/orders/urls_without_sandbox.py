"""A URLconf like the store's with the sandbox routes left out (as when the sandbox is off)."""

from django.urls import include, path

urlpatterns = [
    path("accounts/", include("accounts.urls")),
    path("", include("storefront.pages")),
    path("", include("orders.urls")),
]
