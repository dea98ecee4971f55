"""Placeholder: replaced by the module's real views."""
from django.http import Http404


def metrics(request, *args, **kwargs):
    raise Http404("not built yet")


def export_orders_csv(request, *args, **kwargs):
    raise Http404("not built yet")
