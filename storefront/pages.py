"""The store's plain pages: help, terms, refund policy.

Each renders `site/<name>.html` when the shop provides one (drop it into `templates/site/`), else
the bundled `pages/<name>.html`: the legal text can be replaced without touching code.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

app_name = "pages"


def _page(name: str):
    @require_GET
    def view(request: HttpRequest) -> HttpResponse:
        return render(request, [f"site/{name}.html", f"pages/{name}.html"])

    view.__name__ = f"{name.replace('-', '_')}_page"
    return view


urlpatterns = [
    path("help/", _page("help"), name="help"),
    path("terms/", _page("terms"), name="terms"),
    path("refund-policy/", _page("refund-policy"), name="refund_policy"),
]
