"""Placeholder: replaced by the module's real views."""
from django.http import Http404


def kryptoexpress_callback(request, *args, **kwargs):
    raise Http404("not built yet")
