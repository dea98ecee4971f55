"""Placeholder: replaced by the module's real views."""
from django.http import Http404


def key_usage_fragment(request, *args, **kwargs):
    raise Http404("not built yet")
