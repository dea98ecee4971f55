"""Browser fixtures for the end-to-end journey: Debian's chromium driven by Playwright.

The browser is never downloaded: we launch the system chromium (`.ci/run` installs it) and skip,
saying why, when it is not there. Screenshots go to `test-artifacts/e2e/` (gitignored), which CI
keeps as artifacts; a failing test also leaves `99-failure-<test>-<tab>.png` there.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Playwright's sync API runs an asyncio loop in this thread; Django would otherwise refuse ORM
# calls made from the test body ("You cannot call this from an async context").
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
VIEWPORT = {"width": 1280, "height": 900}
# Generous for a slow CI box, far below the two-minute budget of the whole journey.
DEFAULT_TIMEOUT_MS = 15_000


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item so `page` can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def chromium_browser():
    """One headless system chromium for the session; skips when it is not installed."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"end-to-end tests need Debian's chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """The screenshot folder, emptied once per run so no picture is left from an earlier one."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS


@pytest.fixture
def page(chromium_browser, artifacts_dir, request) -> Iterator:
    """A fresh browser context (no cookies) and page; page errors and CSP violations are collected."""
    context = chromium_browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    page.js_errors = []  # uncaught exceptions and console errors (CSP violations land here too)
    context.on("page", lambda new_page: _watch(new_page, page.js_errors))
    _watch(page, page.js_errors)
    yield page
    outcome = getattr(request.node, "rep_call", None)
    if outcome is not None and outcome.failed:
        for number, open_page in enumerate(context.pages):
            name = f"99-failure-{request.node.name}-{number}.png"
            with contextlib.suppress(Exception):  # a screenshot must never hide the real failure
                open_page.screenshot(path=str(artifacts_dir / name), full_page=True)
    context.close()


# Chromium asks for /favicon.ico on its own; the store has none (a missing icon is not a page error).
IGNORED_PATHS = ("/favicon.ico",)


def _watch(page, errors: list[str]) -> None:
    """Record uncaught exceptions, console errors (CSP violations among them) and failed requests."""

    def on_console(message) -> None:
        # Failed loads are reported below with their URL; the console line does not name it.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(f"{page.url}: console: {message.text}")

    def on_response(response) -> None:
        if response.status >= 400 and not response.url.split("?")[0].endswith(IGNORED_PATHS):
            errors.append(f"{page.url}: HTTP {response.status} for {response.request.method} {response.url}")

    page.on("pageerror", lambda error: errors.append(f"{page.url}: uncaught: {error}"))
    page.on("console", on_console)
    page.on("response", on_response)
    page.on("requestfailed", lambda request: errors.append(f"{page.url}: request failed: {request.url}"))


@pytest.fixture
def shoot(artifacts_dir) -> Callable:
    """`shoot(page, "01-signup")` saves a full-page PNG of that step and returns its path.

    It also checks the page fits the desktop viewport: a wide child (a long code line in a grid
    column) once pushed the order page sideways, which a customer sees as a broken layout.
    """

    def take(page, name: str) -> Path:
        path = artifacts_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        width, window = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width <= window, f"{name}: the page is {width}px wide in a {window}px window"
        return path

    return take


@pytest.fixture
def store(live_server, settings) -> str:
    """Point the store and both of its API clients at the live server (the sandboxes over real HTTP)."""
    settings.ALLOWED_HOSTS = ["*"]
    settings.SANDBOX = True
    settings.SITE_URL = live_server.url
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    settings.OPENROUTER_API_URL = live_server.url + "/sandbox/openrouter/api/v1"
    settings.KRYPTO_EXPRESS_API_URL = live_server.url + "/sandbox/kryptoexpress/api"
    return live_server.url
