"""OpenRouter sandbox, mounted at /sandbox/openrouter/api/v1/ (sandbox mode only; storefront/urls.py).

Paths have no trailing slash, like the real API (a trailing slash is tolerated).
"""

from django.urls import re_path

from openrouter.sandbox import views

app_name = "openrouter_sandbox"

urlpatterns = [
    re_path(r"^models/?$", views.models_list, name="models"),
    re_path(r"^credits/?$", views.credits_view, name="credits"),
    re_path(r"^keys/?$", views.keys_collection, name="keys"),
    re_path(r"^keys/(?P<key_hash>[^/]+)/?$", views.key_detail, name="key"),
    re_path(r"^_sandbox/faults/?$", views.control_faults, name="control-faults"),
    re_path(r"^_sandbox/keys/(?P<key_hash>[^/]+)/spend/?$", views.control_spend, name="control-spend"),
    re_path(r"^_sandbox/credits/?$", views.control_credits, name="control-credits"),
    re_path(r"^_sandbox/models/?$", views.control_models, name="control-models"),
    re_path(r"^_sandbox/reset/?$", views.control_reset, name="control-reset"),
    re_path(r"^(?P<rest>.*)$", views.not_found, name="not-found"),
]
