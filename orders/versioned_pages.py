"""Render once per catalogue version, serve many times: pages and JSON answers built only from
catalogue data (see `orders.catalogue_snapshot`).

A page is rendered in full once per (version, key, kind of visitor) and kept in this process's
memory with the per-request parts left as markers; each request then only fills in:
- the CSRF token (a fresh masked token per request, as `{% csrf_token %}` gives);
- the signed-in visitor's email and names: the page is rendered for a stand-in user of the same
  kind (anonymous / customer / staff / superuser) whose fields are markers, so nothing of one
  visitor can ever reach another's page.
Requests with messages waiting to be shown are rendered normally (messages are per visitor).
A template that transforms a per-request value (e.g. `{{ user.email|upper }}`) leaves a marker
that cannot be filled, and a page that shows the request's URL or query string would carry one
visitor's URL to the next: both are detected (a second render with other markers and another
query string differs) and such a page is never cached, only rendered normally (and logged).

JSON answers that depend only on the URL and the catalogue data are kept per version with an
ETag derived from the version, so an unchanged answer costs a 304.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import secrets
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.html import escape

from orders.catalogue_cache import catalogue_snapshot
from orders.catalogue_snapshot import Snapshot

logger = logging.getLogger("orders.versioned_pages")

# Random per process: a visitor cannot type a marker into a field and have it filled.
_MARK = "tsm" + secrets.token_hex(8)


@dataclass(frozen=True)
class _Markers:
    """Stand-ins for the per-request values, in the page where the real values go."""

    csrf: str
    email: str
    first_name: str
    last_name: str

    @classmethod
    def make(cls, tag: str) -> _Markers:
        return cls(*(f"{_MARK}{tag}{field}" for field in ("csrf", "email", "first", "last")))

    def normalized(self, html: str) -> str:
        for name, mark in vars(self).items():
            html = html.replace(mark, f"\0{name}\0")
        return html


MARKERS = _Markers.make("a")
_BYTE_MARKERS: dict[str, bytes] = {name: mark.encode() for name, mark in vars(MARKERS).items()}
# A second set of another length: a page whose output differs between the two renders transforms
# a per-request value (`|upper`, `|slice`, `|length`...), which filling in cannot reproduce.
_CHECK_MARKERS = _Markers.make("check-b")


def _visitor_kind(request: HttpRequest) -> tuple[bool, bool, bool]:
    user = request.user
    return bool(user.is_authenticated), bool(user.is_staff), bool(user.is_superuser)


def _stand_in_user(kind: tuple[bool, bool, bool], markers: _Markers):
    authenticated, staff, superuser = kind
    if not authenticated:
        return AnonymousUser()
    return get_user_model()(
        email=markers.email, first_name=markers.first_name, last_name=markers.last_name,
        is_staff=staff, is_superuser=superuser, is_active=True,
    )


def _has_messages(request: HttpRequest) -> bool:
    storage = getattr(request, "_messages", None)
    # len() loads waiting messages without marking them shown.
    return storage is not None and len(storage) > 0


@dataclass(frozen=True)
class _Rendered:
    """The page as UTF-8 bytes: encoding 40 kB of text with non-ASCII characters in it cost
    about a tenth of a served page, so it is done once, and the markers are filled in as bytes."""

    html: bytes
    has_csrf: bool
    has_user_fields: bool

    def fill(self, request: HttpRequest) -> bytes:
        html = self.html
        if self.has_csrf:
            html = html.replace(_BYTE_MARKERS["csrf"], get_token(request).encode())
        if self.has_user_fields:
            user = request.user
            html = (
                html.replace(_BYTE_MARKERS["email"], escape(user.email).encode())
                .replace(_BYTE_MARKERS["first_name"], escape(user.first_name).encode())
                .replace(_BYTE_MARKERS["last_name"], escape(user.last_name).encode())
            )
        return html


def _render_as(
    request: HttpRequest, template_name: str, context: dict, kind, markers: _Markers, *, extra_query: bool = False
) -> str:
    stand_in = _stand_in_user(kind, markers)
    # The template sees `user` and `request.user` as the stand-in, never the real visitor.
    shadow = copy.copy(request)
    shadow.user = stand_in
    if extra_query:
        # The check render also sees another query string: a page that shows this visitor's URL
        # (e.g. a `?next=` link) must not be cached and shown to the next visitor.
        shadow.GET = request.GET.copy()
        shadow.GET[_MARK + "q"] = "1"
        shadow.META = {**request.META, "QUERY_STRING": shadow.GET.urlencode()}
    return render_to_string(
        template_name, {**context, "user": stand_in, "csrf_token": markers.csrf, "messages": ()}, request=shadow
    )


def _render_with_markers(
    request: HttpRequest, template_name: str, context: dict, kind: tuple[bool, bool, bool]
) -> _Rendered | None:
    html = _render_as(request, template_name, context, kind, MARKERS)
    check = _render_as(request, template_name, context, kind, _CHECK_MARKERS, extra_query=True)
    if MARKERS.normalized(html) != _CHECK_MARKERS.normalized(check):
        logger.warning("%s transforms a per-request value: rendered per request, not cached", template_name)
        return None
    user_marks = (MARKERS.email, MARKERS.first_name, MARKERS.last_name)
    return _Rendered(
        html=html.encode(), has_csrf=MARKERS.csrf in html, has_user_fields=any(m in html for m in user_marks)
    )


def render_per_version(
    request: HttpRequest,
    *,
    template_name: str,
    key: Hashable,
    context: Callable[[], dict],
    snapshot: Snapshot | None = None,
) -> HttpResponse:
    """`render(request, template_name, context())`, computed once per catalogue version and `key`.

    `key` must name everything the page depends on besides the catalogue data and the visitor's
    kind (e.g. the chosen model); `context` is only called when the page has to be rendered.
    """
    snapshot = snapshot if snapshot is not None else catalogue_snapshot()
    if snapshot.version is None or _has_messages(request):
        return render(request, template_name, context())
    kind = _visitor_kind(request)
    rendered = snapshot.remember(
        ("page", template_name, key, kind), lambda: _render_with_markers(request, template_name, context(), kind)
    )
    if rendered is None:
        return render(request, template_name, context())
    return HttpResponse(rendered.fill(request))


@dataclass(frozen=True)
class _StoredResponse:
    status: int
    content: bytes
    headers: tuple[tuple[str, str], ...]  # an answer kept with its ETag (200s only) among them

    @property
    def etag(self) -> str:
        return next((value for name, value in self.headers if name == "ETag"), "")


def _etag(version: str, key: str) -> str:
    return '"' + hashlib.blake2b(f"{version}|{key}".encode(), digest_size=12).hexdigest() + '"'


def cached_by_catalogue_version(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Keep a GET view's answer per catalogue version and URL, with an ETag (304 when unchanged).

    Only for answers that depend on nothing but the URL and the catalogue data — no user, no
    session, no cookie (JSON quotes, the catalogue as JSON). Cookies set by the view are not kept.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        snapshot = catalogue_snapshot()
        if snapshot.version is None or request.method not in ("GET", "HEAD"):
            return view(request, *args, **kwargs)
        key = request.get_full_path()

        def compute() -> _StoredResponse:
            response = view(request, *args, **kwargs)
            headers = tuple(response.headers.items())
            if response.status_code == 200:
                headers += (("ETag", _etag(snapshot.version, key)),)
            return _StoredResponse(status=response.status_code, content=response.content, headers=headers)

        stored = snapshot.remember(("response", view.__module__, view.__qualname__, key), compute)
        etag = stored.etag
        # request.META, not request.headers: that would build a dictionary of every header
        if etag and request.META.get("HTTP_IF_NONE_MATCH") == etag:
            not_modified = HttpResponseNotModified()
            not_modified["ETag"] = etag
            return not_modified
        response = HttpResponse(stored.content, status=stored.status)
        for name, value in stored.headers:
            response[name] = value
        return response

    return wrapper
