"""Project-wide views: the friendly rate-limit page."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def rate_limited(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """django-ratelimit sends blocked requests here: a 429 with a page a person can read."""
    return render(request, "429.html", status=429)
