"""Placeholder: replaced by the module's real views."""
from django.http import Http404


def order_detail(request, *args, **kwargs):
    raise Http404("not built yet")


def order_status_fragment(request, *args, **kwargs):
    raise Http404("not built yet")


def api_order_detail(request, *args, **kwargs):
    raise Http404("not built yet")
