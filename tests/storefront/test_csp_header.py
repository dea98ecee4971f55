"""The fixed CSP header is built once and is exactly the header django-csp would build."""

from __future__ import annotations

from csp.middleware import CSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory

from storefront.csp_header import FixedPolicyCSPMiddleware


def _respond(middleware_class, response: HttpResponse, path: str = "/") -> HttpResponse:
    request = RequestFactory().get(path)
    middleware = middleware_class(lambda request: response)
    return middleware(request)


def test_the_header_is_the_one_django_csp_builds():
    ours = _respond(FixedPolicyCSPMiddleware, HttpResponse("x"))
    theirs = _respond(CSPMiddleware, HttpResponse("x"))
    assert ours["Content-Security-Policy"] == theirs["Content-Security-Policy"]
    assert "default-src 'self'" in ours["Content-Security-Policy"]


def test_a_changed_setting_changes_the_header(settings):
    _respond(FixedPolicyCSPMiddleware, HttpResponse("x"))
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    assert _respond(FixedPolicyCSPMiddleware, HttpResponse("x"))["Content-Security-Policy"] == "default-src 'none'"


def test_per_view_changes_still_go_through_django_csp():
    response = HttpResponse("x")
    response._csp_update = {"img-src": ["https://images.example"]}
    header = _respond(FixedPolicyCSPMiddleware, response)["Content-Security-Policy"]
    assert "https://images.example" in header
    exempt = HttpResponse("x")
    exempt._csp_exempt = True
    assert "Content-Security-Policy" not in _respond(FixedPolicyCSPMiddleware, exempt)


def test_a_header_set_by_the_view_is_kept():
    response = HttpResponse("x")
    response["Content-Security-Policy"] = "default-src 'self' https://cdn.example"
    assert _respond(FixedPolicyCSPMiddleware, response)["Content-Security-Policy"].endswith("cdn.example")
