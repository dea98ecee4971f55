"""Serve OpenRouter client calls from this process's sandbox, without a running web server.

``make run`` seeds the catalogue (``manage.py sync_models --in-process``) before it starts the
web server that normally hosts the sandbox. The real client code still builds, sends and parses
every request; only the socket is replaced by a call into Django's URL routing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.test import Client
from django.urls import reverse
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from openrouter.client import OpenRouterClient

_BASE = "http://sandbox.in-process"


def _host() -> str:
    for host in settings.ALLOWED_HOSTS:
        host = host.lstrip(".")
        if host and host != "*":
            return host
    return "localhost"


class InProcessAdapter(BaseAdapter):
    """A requests transport that hands each request to Django's test client."""

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        url = urlsplit(request.url)
        path = url.path + (f"?{url.query}" if url.query else "")
        forwarded = {
            name: value for name, value in request.headers.items() if name.lower() in {"authorization", "accept"}
        }
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        answer = Client(HTTP_HOST=_host()).generic(
            request.method,
            path,
            data=body,
            content_type=request.headers.get("Content-Type", "application/octet-stream"),
            headers=forwarded,
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response.reason = answer.reason_phrase
        response._content = answer.content
        response.headers = CaseInsensitiveDict(dict(answer.headers.items()))
        response.url = request.url
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        return None


def in_process_client() -> OpenRouterClient:
    """An OpenRouterClient wired straight to the sandbox views (sandbox mode only)."""
    if not settings.SANDBOX:
        raise RuntimeError("the in-process OpenRouter sandbox exists only in sandbox mode")
    root = reverse("openrouter_sandbox:models").removesuffix("models")
    session = requests.Session()
    session.mount(_BASE, InProcessAdapter())
    return OpenRouterClient(
        base_url=_BASE + root.rstrip("/"),
        api_key=settings.OPENROUTER_API_KEY,
        timeout=settings.HTTP_TIMEOUT,
        session=session,
    )
