"""The catalogue rendered once per version: what bumps the version, what a cached page may
show, and what it must never share between visitors."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import responses
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from openrouter.catalogue_sync import catalogue_set_offered, catalogue_sync
from openrouter.models import AIModel
from orders import versioned_pages
from orders.catalogue_cache import catalogue_snapshot
from orders.models import TokenPackage
from payments.rates import RATES_CACHE_KEY, refresh_rates
from storefront.catalogue_version import CATALOGUE_VERSION_KEY, catalogue_version, catalogue_version_bump
from tests.factories import AIModelFactory, StaffFactory, TokenPackageFactory, UserFactory
from tests.orders.checkout_support import GATEWAY_URL, serve_usd_rates

pytestmark = pytest.mark.django_db

SONNET = "anthropic/claude-3-sonnet"
OPENROUTER = "https://openrouter.test/api/v1"


@pytest.fixture(autouse=True)
def _catalogue(db, settings):
    settings.DEFAULT_MODEL = SONNET
    settings.PAYMENT_CURRENCIES = ["BTC", "USDT_TRC20"]
    settings.OPENROUTER_API_URL = OPENROUTER
    settings.KRYPTO_EXPRESS_API_URL = GATEWAY_URL
    TokenPackage.objects.all().delete()
    AIModelFactory(id=SONNET, name="Anthropic: Claude 3 Sonnet")
    TokenPackageFactory(name="Standard", share="0.25", position=1)
    cache.set(RATES_CACHE_KEY, {"rates": {"BTC": "97000", "USDT_TRC20": "1"}, "fetched_at": "t0"}, timeout=60)


def page(client, **params) -> str:
    response = client.get(reverse("orders:catalogue"), params)
    assert response.status_code == 200
    return response.content.decode()


def serve_catalogue(mocked, prompt: str, completion: str) -> None:
    pricing = {"prompt": prompt, "completion": completion, "request": "0", "image": "0"}
    mocked.get(
        OPENROUTER + "/models",
        json={"data": [{"id": SONNET, "name": "Claude 3 Sonnet", "context_length": 200000, "pricing": pricing}]},
    )


# --- the version moves on every event that changes what the catalogue shows --------------------


def test_a_catalogue_sync_starts_a_new_version():
    before = catalogue_version()
    with responses.RequestsMock() as mocked:
        serve_catalogue(mocked, "0.000003", "0.000015")
        assert catalogue_sync().ok
    assert catalogue_version() != before


def test_a_failed_sync_changes_nothing_and_keeps_the_version():
    before = catalogue_version()
    with responses.RequestsMock() as mocked:
        mocked.get(OPENROUTER + "/models", status=500)
        assert not catalogue_sync().ok
    assert catalogue_version() == before


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda: AIModelFactory(id="openai/gpt-4o", name="GPT-4o", offered=True), id="model created"),
        pytest.param(lambda: AIModel.objects.get(pk=SONNET).save(), id="model saved"),
        pytest.param(lambda: AIModel.objects.get(pk=SONNET).delete(), id="model deleted"),
        pytest.param(lambda: TokenPackageFactory(share="0.1"), id="package created"),
        pytest.param(lambda: TokenPackage.objects.get().save(), id="package saved"),
        pytest.param(lambda: TokenPackage.objects.get().delete(), id="package deleted"),
        pytest.param(lambda: catalogue_set_offered(model_ids=[SONNET], offered=False), id="model withdrawn"),
        pytest.param(lambda: catalogue_set_offered(model_ids=[SONNET], offered=True), id="model offered"),
    ],
)
def test_staff_and_sync_writes_start_a_new_version(change):
    before = catalogue_version()
    change()
    assert catalogue_version() != before


@pytest.mark.parametrize("action", ["hide_packages", "show_packages"])
def test_admin_bulk_package_actions_start_a_new_version(staff_client, action):
    before = catalogue_version()
    response = staff_client.post(
        reverse("admin:orders_tokenpackage_changelist"),
        {"action": action, "_selected_action": [TokenPackage.objects.get().pk]},
    )
    assert response.status_code == 302
    assert catalogue_version() != before


def test_the_version_is_bumped_again_when_the_transaction_commits(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        catalogue_version_bump()
    during = catalogue_version()
    for callback in callbacks:
        callback()
    # A reader that rebuilt its copy before the commit cannot keep it past the commit.
    assert catalogue_version() != during


def test_a_rates_refresh_and_a_rates_expiry_each_make_a_new_snapshot(settings):
    settings.CATALOGUE_RECHECK_SECONDS = 0  # every request asks the cache
    first = catalogue_snapshot()
    with responses.RequestsMock() as mocked:
        serve_usd_rates(mocked, btc=50000.0, usdt=1.0)
        refresh_rates()
    refreshed = catalogue_snapshot()
    assert refreshed.version != first.version
    assert refreshed.data.rates["BTC"] == Decimal("50000.0")
    cache.delete(RATES_CACHE_KEY)  # what the 60-second TTL does
    expired = catalogue_snapshot()
    assert expired.version != refreshed.version
    assert expired.data.rates == {}


def test_other_processes_changes_are_seen_after_the_recheck_window_this_processs_at_once(settings, monkeypatch):
    settings.CATALOGUE_RECHECK_SECONDS = 5
    clock = [1000.0]
    monkeypatch.setattr("orders.catalogue_snapshot.time.monotonic", lambda: clock[0])
    first = catalogue_snapshot()
    cache.set(CATALOGUE_VERSION_KEY, "bumped-by-another-process")
    clock[0] += 4.9
    assert catalogue_snapshot() is first  # within the window: no cache round trip, same copy
    clock[0] += 0.2
    seen = catalogue_snapshot()
    assert seen.version != first.version and seen.version.startswith("bumped-by-another-process")
    catalogue_version_bump()  # a change made in this process: no waiting
    assert catalogue_snapshot().version != seen.version


def test_a_lost_version_key_starts_a_new_version_never_an_old_one():
    before = catalogue_version()
    cache.delete(CATALOGUE_VERSION_KEY)
    assert catalogue_version() != before


# --- a cached page follows the version ---------------------------------------------------------


def test_the_cached_page_shows_new_prices_after_a_sync(client):
    assert "$4.86" in page(client)  # Standard: 450,000 tokens at $9/M blended + 20 %
    with responses.RequestsMock() as mocked:
        serve_catalogue(mocked, "0.000006", "0.000030")  # prices doubled
        assert catalogue_sync().ok
    html = page(client)
    assert "$4.97" in html  # Standard re-sized to 230,000 tokens at $18/M blended + 20 %
    assert "$4.86" not in html


def test_a_withdrawn_model_and_a_hidden_package_leave_the_cached_page(client, staff_client):
    AIModelFactory(id="openai/gpt-4o", name="OpenAI: GPT-4o", offered=True)
    assert "OpenAI: GPT-4o" in page(client)
    catalogue_set_offered(model_ids=["openai/gpt-4o"], offered=False)
    assert "OpenAI: GPT-4o" not in page(client)
    staff_client.post(
        reverse("admin:orders_tokenpackage_changelist"),
        {"action": "hide_packages", "_selected_action": [TokenPackage.objects.get().pk]},
    )
    assert "Standard" not in page(client)


def test_expired_rates_leave_the_cached_page(client, settings):
    settings.CATALOGUE_RECHECK_SECONDS = 0  # the expiry happens in the cache, not in this process
    assert "momentarily unavailable" not in page(client)
    cache.delete(RATES_CACHE_KEY)
    assert "momentarily unavailable" in page(client)


def test_a_warm_page_runs_no_query_and_a_new_version_two(client, django_assert_num_queries):
    page(client)
    with django_assert_num_queries(0):
        page(client)
        page(client, model=SONNET)
    catalogue_version_bump()
    with django_assert_num_queries(2):  # the models and the packages, however many
        page(client)


def test_the_signed_in_page_runs_no_query_when_warm(user_client, django_assert_num_queries):
    page(user_client)
    with django_assert_num_queries(0):  # session from the cache, the verified user remembered
        page(user_client)


def test_an_anonymous_visit_writes_no_session_and_no_row(client):
    page(client)  # warm
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("orders:catalogue"))
    assert not [q["sql"] for q in queries.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert "sessionid" not in response.cookies
    assert Session.objects.count() == 0


def test_requests_the_cache_cannot_answer_are_rendered_per_request(client):
    # A custom amount and an unknown model are not cached, and still right.
    assert "$5.40" in page(client, tokens="500000")
    assert "isn&#x27;t available" in page(client, model="no/such-model") or "isn't available" in page(
        client, model="no/such-model"
    )


# --- what one visitor's page must never carry to another ---------------------------------------


def csrf_in(html: str) -> set[str]:
    return set(re.findall(r'"X-CSRFToken": "([^"]+)"', html)) | set(
        re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    )


def test_each_visitor_gets_their_own_csrf_token_and_header(client, django_user_model):
    from django.test import Client

    customer, staff = UserFactory(), StaffFactory()
    anonymous, signed_in, staff_browser = Client(), Client(), Client()
    signed_in.force_login(customer)
    staff_browser.force_login(staff)
    pages = {}
    for name, browser in (("anonymous", anonymous), ("customer", signed_in), ("staff", staff_browser)):
        page(browser)  # the first render of each kind of visitor
        pages[name] = page(browser)
    tokens = {name: csrf_in(html) for name, html in pages.items()}
    # The catalogue has nothing to post ("Log out" links to a page that asks): no visitor's page
    # carries a token, so none sets a CSRF cookie or mints a token.
    assert tokens == {"anonymous": set(), "customer": set(), "staff": set()}
    assert not {"csrftoken"} & {*anonymous.cookies, *signed_in.cookies, *staff_browser.cookies}
    assert "Log in" in pages["anonymous"] and "Log out" not in pages["anonymous"]
    assert "Log out" in pages["customer"] and "Admin" not in pages["customer"]
    assert "Log out" in pages["staff"] and reverse("admin:index") in pages["staff"]
    assert versioned_pages._MARK not in "".join(pages.values())


def test_the_csrf_token_filled_into_a_cached_page_is_the_visitors_own(email_template, rf, user):
    # A page cached per version with a form gets each visitor's own token filled in: one a
    # strict CSRF check accepts for that visitor's cookie (a 403 if it were anyone else's).
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get(reverse("accounts:logout"))  # any page with a form: it sets the CSRF cookie
    secret = browser.cookies["csrftoken"].value
    bodies = []
    for _ in range(2):  # rendered, then served from the per-version copy
        request = rf.get("/")
        request.user, request.session = user, browser.session
        request.META["CSRF_COOKIE"] = secret  # as CsrfViewMiddleware does from the cookie
        bodies.append(_serve(request, "whoami.html").content.decode())
    tokens = [next(iter(csrf_in(body))) for body in bodies]
    assert tokens[0] != tokens[1]  # masked afresh each time
    response = browser.post(reverse("accounts:logout"), {"csrfmiddlewaretoken": tokens[1]})
    assert response.status_code == 302


@pytest.fixture
def email_template(settings, tmp_path):
    (tmp_path / "whoami.html").write_text(
        "<p>{{ user.email }}|{{ user.get_full_name }}|{% csrf_token %}|{{ request.user.email }}</p>"
    )
    (tmp_path / "shout.html").write_text("<p>{{ user.email|upper }}</p>")
    (tmp_path / "next.html").write_text('<a href="/login/?next={{ request.get_full_path|urlencode }}">Log in</a>')
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]


def _serve(request, template_name: str):
    return versioned_pages.render_per_version(request, template_name=template_name, key="test", context=dict)


def test_a_cached_page_shows_each_signed_in_visitor_their_own_name(email_template, rf):
    from django.contrib.sessions.backends.cache import SessionStore

    first = UserFactory(email="first@example.com", first_name="Ada", last_name="Lovelace")
    second = UserFactory(email="second@example.com", first_name="Grâce", last_name="<Hopper> ✓")
    bodies = []
    for user in (first, second, first):
        request = rf.get("/")
        request.user, request.session = user, SessionStore()
        bodies.append(_serve(request, "whoami.html").content.decode())
    assert "first@example.com|Ada Lovelace|" in bodies[0] and bodies[0].endswith("|first@example.com</p>")
    assert "second@example.com|Grâce &lt;Hopper&gt; ✓|" in bodies[1]
    # (not a bare "Ada": the random CSRF token in the page may contain those three letters)
    assert "first@example.com" not in bodies[1] and "|Ada" not in bodies[1] and "Lovelace" not in bodies[1]
    assert bodies[2].startswith("<p>first@example.com|Ada Lovelace|")
    assert csrf_in(bodies[0].replace("'", '"')) or "csrfmiddlewaretoken" in bodies[0]


def test_a_template_that_transforms_a_personal_value_is_never_cached(email_template, rf):
    from django.contrib.sessions.backends.cache import SessionStore

    bodies = []
    for email in ("one@example.com", "two@example.com"):
        request = rf.get("/")
        request.user, request.session = UserFactory(email=email), SessionStore()
        bodies.append(_serve(request, "shout.html").content.decode())
    assert bodies == ["<p>ONE@EXAMPLE.COM</p>", "<p>TWO@EXAMPLE.COM</p>"]


def test_a_page_showing_the_visitors_url_is_never_cached(email_template, rf):
    from django.contrib.auth.models import AnonymousUser

    bodies = []
    for query in ("?utm=first", "?utm=second"):
        request = rf.get("/" + query)
        request.user, request.session = AnonymousUser(), {}
        bodies.append(_serve(request, "next.html").content.decode())
    assert "utm%3Dfirst" in bodies[0]
    assert "utm%3Dsecond" in bodies[1] and "first" not in bodies[1]


def test_a_visitor_with_a_message_waiting_sees_it_and_nobody_else_does(user_client, rf):
    from django.contrib.messages.storage.base import Message
    from django.contrib.messages.storage.cookie import CookieStorage
    from django.test import Client

    other = Client()
    page(other)
    page(user_client)
    # A message left by the previous response (as after a redirect), in the messages cookie.
    user_client.cookies["messages"] = CookieStorage(rf.get("/"))._encode([Message(20, "Your order was cancelled.")])
    assert "Your order was cancelled." in page(user_client)
    assert "Your order was cancelled." not in page(user_client)  # shown once, as always
    assert "Your order was cancelled." not in page(other)


def test_with_the_cache_down_the_page_is_rendered_from_the_database(client, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get_many", down)
    assert "$4.86" in page(client)
    assert "$4.86" in page(client)


# --- the quote API -----------------------------------------------------------------------------


def test_the_quote_api_answers_from_memory_with_an_etag_and_a_304(client, django_assert_num_queries):
    url = reverse("orders:api_quote") + f"?model={SONNET}&tokens=500000&crypto=BTC"
    first = client.get(url)
    assert first.status_code == 200 and first.json()["total_usd_cost"] == "5.40"
    with django_assert_num_queries(0):
        again = client.get(url, headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 304
    AIModel.objects.filter(pk=SONNET).update(prompt_price=Decimal("0.000006"), completion_price=Decimal("0.00003"))
    catalogue_version_bump()  # as the sync does after its bulk write
    changed = client.get(url, headers={"If-None-Match": first["ETag"]})
    assert changed.status_code == 200 and changed.json()["total_usd_cost"] == "10.80"
    assert changed["ETag"] != first["ETag"]


def test_the_quote_api_keeps_its_headers_and_errors(client):
    response = client.get(reverse("orders:api_quote"), {"model": SONNET, "tokens": "12"})
    again = client.get(reverse("orders:api_quote"), {"model": SONNET, "tokens": "12"})
    assert response.status_code == again.status_code == 400
    assert again["Cache-Control"] == "no-store" and again["Content-Type"] == "application/json"
    assert again.json() == response.json()
    assert "ETag" not in again


def test_messages_api_is_untouched_by_the_cache(rf):
    # len() of the message storage must not mark messages as shown (the helper relies on it).
    from django.contrib.messages.storage.fallback import FallbackStorage

    request = rf.get("/")
    request.session = {}
    request._messages = FallbackStorage(request)
    request._messages.add(20, "hello")
    assert versioned_pages._has_messages(request)
    assert [str(m) for m in get_messages(request)] == ["hello"]
