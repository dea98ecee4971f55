"""django-csp's middleware, with the store's fixed policy built once instead of on every response.

django-csp rebuilds both headers from settings on every response (a dataclass → dict
conversion and a string join each time), a noticeable share of a cached page's cost. The
store's policy has no nonce and no per-view changes, so the built headers are kept until the
settings change. A response or request that does use per-view policy changes (`csp_update`,
`csp_replace`, `csp_exempt`…) or a nonce goes through django-csp unchanged.
"""

from __future__ import annotations

import http.client
from functools import cache

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase

_PER_RESPONSE = (
    "_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro",
    "_csp_exempt", "_csp_exempt_ro",
)


@cache
def _headers() -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(header, value, excluded URL prefixes) for each configured policy."""
    headers = []
    for header, setting, report_only in (
        (HEADER, "CONTENT_SECURITY_POLICY", False),
        (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True),
    ):
        value = build_policy(report_only=report_only)
        if value:
            prefixes = tuple((getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ())
            headers.append((header, value, prefixes))
    return tuple(headers)


@receiver(setting_changed)
def _forget_headers(*, setting: str, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _headers.cache_clear()


class FixedPolicyCSPMiddleware(CSPMiddleware):
    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(
            getattr(response, name, None) is not None for name in _PER_RESPONSE
        ):
            return super().process_response(request, response)
        if settings.DEBUG and response.status_code in (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND):
            return response  # Django's debug pages, as django-csp leaves them
        for header, value, prefixes in _headers():
            if header not in response and not (prefixes and request.path_info.startswith(prefixes)):
                response[header] = value
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
