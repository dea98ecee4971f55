"""Placeholder: replaced by the module's real views."""
from django.http import Http404


def order_new(request, *args, **kwargs):
    raise Http404("not built yet")


def order_list_or_create(request, *args, **kwargs):
    raise Http404("not built yet")
