"""The catalogue page in a real browser, as a fresh `make run` leaves the store.

Every offered model shows four buyable packages; the page fits a 390 px phone and a 1280 px
desktop without sideways scrolling and passes axe-core (no serious or critical violation);
finding a model works with JavaScript (htmx swaps the list) and without it (the form submits).
Screenshots land in `test-artifacts/e2e/catalogue-*.png`; `docs/catalogue.png` is refreshed from
the desktop one (`E2E_REFRESH_DOCS=1`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from openrouter.catalogue_sync import catalogue_sync
from openrouter.client import close_shared_session
from openrouter.models import AIModel
from orders.management.commands.seed_packages import packages_seed
from payments.rates import refresh_rates
from tests.e2e.page_checks import assert_accessible, assert_no_horizontal_overflow

pytestmark = [pytest.mark.e2e, pytest.mark.live, pytest.mark.django_db(transaction=True)]

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "catalogue.png"
PACKAGE_NAMES = ["Starter", "Standard", "Professional", "Enterprise"]


@pytest.fixture
def fresh_store(store):
    """Packages seeded, the sandbox catalogue synced with the out-of-the-box offer, rates cached."""
    packages_seed()  # an earlier transactional test's flush removed the migration's rows
    try:
        synced = catalogue_sync()
    finally:
        close_shared_session()  # a pooled socket would pin a live-server thread and its DB session
    assert synced.ok, synced.error
    assert "BTC" in refresh_rates()
    offered = list(AIModel.objects.orderable().order_by("name").values_list("name", flat=True))
    assert len(offered) >= 5, offered
    return store, offered


def short_name(name: str) -> str:
    return name.split(": ", 1)[1] if ": " in name else name


@pytest.mark.parametrize("width", [390, 1280])
def test_every_offered_model_shows_four_buyable_packages_and_the_page_fits(
    fresh_store, page, shoot, artifacts_dir, width
):
    store, offered = fresh_store
    page.set_viewport_size({"width": width, "height": 900})
    # when
    page.goto(store + "/")
    # then every offered model has a card with four packages that link to checkout
    cards = page.locator("article.model-card")
    expect(cards).to_have_count(len(offered))
    for name in offered:
        card = cards.filter(has=page.get_by_role("heading", name=short_name(name), exact=True))
        expect(card).to_have_count(1)
        buttons = card.locator("a.package-buy")
        expect(buttons).to_have_count(4)
        expect(card.locator(".package-buy-name")).to_have_text(PACKAGE_NAMES)
        for href in buttons.evaluate_all("links => links.map(link => link.getAttribute('href'))"):
            assert re.fullmatch(r"/orders/new/\?model=[^&]+&tokens=\d+", href), href
        prices = [float(text.strip("$")) for text in card.locator(".package-buy-price").all_inner_texts()]
        assert prices == sorted(prices) and prices[0] >= 1.00 and 18.00 <= prices[-1] <= 20.00, (name, prices)
    expect(page.get_by_text("Unavailable")).to_have_count(0)
    assert_no_horizontal_overflow(page)
    assert_accessible(page)
    shot = shoot(page, f"catalogue-{width}")
    # What a phone shows screen by screen (a full-page picture of a long page is too small to judge).
    for label, selector in (("top", "#catalogue"), ("chosen", "#chosen"), ("custom", "#custom")):
        page.locator(selector).evaluate("element => element.scrollIntoView()")
        page.screenshot(path=str(artifacts_dir / f"catalogue-{width}-screen-{label}.png"))
    cards.nth(1).screenshot(path=str(artifacts_dir / f"catalogue-{width}-model-card.png"))
    if width == 1280 and os.environ.get("E2E_REFRESH_DOCS") == "1":
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(DOCS_SCREENSHOT), full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": 1600})
    assert shot.exists()
    assert page.js_errors == [], page.js_errors


def test_finding_a_model_with_javascript_swaps_the_list_in_place(fresh_store, page, shoot):
    store, offered = fresh_store
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(store + "/")
    # when the customer types in the search box
    page.get_by_label("Search").fill("gpt")
    # then the list narrows without a page load and the URL can be shared
    expect(page.locator("article.model-card")).to_have_count(
        sum(1 for name in offered if "gpt" in name.lower()), timeout=5_000
    )
    expect(page).to_have_url(re.compile(r"q=gpt"))
    # and sorting by price puts the cheapest first
    page.get_by_label("Search").fill("")
    page.get_by_label("Sort by").select_option("price")
    expect(page).to_have_url(re.compile(r"sort=price"))
    first_price = page.locator("article.model-card").first.locator(".package-buy-price").first
    expect(first_price).to_have_text("$1.00")
    assert_no_horizontal_overflow(page)
    shoot(page, "catalogue-390-sorted")
    # a quick amount fills the custom amount field and prices it live
    page.locator("a.preset").last.click()
    expect(page.locator("#quote-result .quote-valid")).to_be_visible()
    assert page.locator("#tokens-input").input_value().isdigit()
    assert page.js_errors == [], page.js_errors


def test_finding_a_model_works_without_javascript(fresh_store, chromium_browser, artifacts_dir):
    store, _offered = fresh_store
    context = chromium_browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 900})
    try:
        page = context.new_page()
        page.goto(store + "/")
        page.get_by_label("Provider").select_option("openai")
        page.get_by_role("button", name="Show", exact=True).click()
        expect(page).to_have_url(re.compile(r"provider=openai"))
        names = page.locator("article.model-card h3").all_inner_texts()
        assert names and all(name.startswith(("GPT", "o1")) for name in names), names
        assert_no_horizontal_overflow(page)
        page.screenshot(path=str(artifacts_dir / "catalogue-390-nojs-filtered.png"), full_page=True)
    finally:
        context.close()

