"""Placeholder: replaced by the module's real views."""
from django.http import Http404


def catalogue(request, *args, **kwargs):
    raise Http404("not built yet")


def quote_fragment(request, *args, **kwargs):
    raise Http404("not built yet")


def api_quote(request, *args, **kwargs):
    raise Http404("not built yet")
