from django.urls import path

from orders.views import callback, catalogue_api, catalogue_pages, checkout, delivery, order_pages, refunds, staff

app_name = "orders"

urlpatterns = [
    # Catalogue and quotes (anonymous welcome).
    path("", catalogue_pages.catalogue, name="catalogue"),
    path("quote/", catalogue_pages.quote_fragment, name="quote_fragment"),
    path("api/quote", catalogue_pages.api_quote, name="api_quote"),
    path("api/catalogue", catalogue_api.api_catalogue, name="api_catalogue"),
    # Checkout and the customer's orders.
    path("orders/new/", checkout.order_new, name="new"),
    path("orders/", checkout.order_list_or_create, name="list"),
    path("orders/<str:order_id>/", order_pages.order_detail, name="detail"),
    path("orders/<str:order_id>/status/", order_pages.order_status_fragment, name="status_fragment"),
    path("orders/<str:order_id>/usage/", delivery.key_usage_fragment, name="usage_fragment"),
    path("orders/<str:order_id>/refund-address/", refunds.refund_address, name="refund_address"),
    path("orders/<str:order_id>/receipt/", order_pages.order_receipt, name="receipt"),
    path("api/orders/<str:order_id>", order_pages.api_order_detail, name="api_detail"),
    # The gateway's callback (CSRF-exempt, signature-checked).
    path("payments/kryptoexpress/callback/", callback.kryptoexpress_callback, name="kryptoexpress_callback"),
    # Staff.
    path("staff/metrics/", staff.metrics, name="staff_metrics"),
    path("staff/metrics/export.csv", staff.export_orders_csv, name="staff_export"),
]
