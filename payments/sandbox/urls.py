"""The KryptoExpress sandbox, mounted at /sandbox/kryptoexpress/ (sandbox mode only).

`api/...` imitates https://kryptoexpress.pro/api/... exactly (no trailing slashes, as the
client appends paths like `/payment` to the base URL); `control/` is the page people use to
pay, underpay, expire or pay late.
"""

from django.urls import include, path, re_path

from payments.sandbox import views

# The price list and its filters, all under api/cryptocurrency as in the gateway's documentation.
cryptocurrency_patterns = [
    path("cryptocurrency", views.api_cryptocurrency, name="api_cryptocurrency"),
    path("cryptocurrency/all", views.api_cryptocurrency_all, name="api_cryptocurrency_all"),
    path("cryptocurrency/stable", views.api_cryptocurrency_stable, name="api_cryptocurrency_stable"),
    path("cryptocurrency/price", views.api_price, name="api_price"),
]

app_name = "kryptoexpress_sandbox"
urlpatterns = [
    path("api/payment", views.api_payment, name="api_payment"),
    path("api/", include(cryptocurrency_patterns)),
    path("api/wallet", views.api_wallet, name="api_wallet"),
    path("api/wallet/withdrawal", views.api_wallet_withdrawal, name="api_wallet_withdrawal"),
    path("control/", views.control_index, name="control_index"),
    re_path(r"^control/(?P<payment_hash>[A-Za-z0-9]{1,128})/$", views.control, name="control"),
]
