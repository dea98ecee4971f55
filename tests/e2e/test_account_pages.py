"""The password pages in Chromium at phone and desktop width: reset by email, then change.

Each page passes axe-core, does not scroll sideways, and is screenshotted for a person to look at.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.core import mail
from django.urls import reverse
from playwright.sync_api import expect

from tests.e2e.test_customer_pages import PASSWORD, WIDTHS, check, customer, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.live, pytest.mark.django_db(transaction=True)]


def new_password(page, shoot, *, button: str, done: str, shot: str) -> str:
    """Type a fresh password twice, submit it, and check the page that confirms it."""
    password = "New-" + uuid.uuid4().hex
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("New password confirmation").fill(password)
    page.get_by_role("button", name=button).click()
    expect(page.get_by_role("heading", name=done)).to_be_visible()
    check(page, shoot, shot)
    return password


@pytest.mark.parametrize("width", [390, 1280])
def test_reset_and_change_a_password_at_width(store, page, shoot, width):
    page.set_viewport_size(WIDTHS[width])
    user = customer()
    mail.outbox.clear()

    # Forgotten password: ask for a link, follow it, choose a new password.
    page.goto(store + reverse("accounts:password_reset"))
    check(page, shoot, f"{width}-30-reset-form")
    page.get_by_label("Email").fill(user.email)
    page.get_by_role("button", name="Send the reset link").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    check(page, shoot, f"{width}-31-reset-sent")

    (message,) = mail.outbox
    link = re.search(r"https?://\S+/accounts/reset/\S+/", message.body).group(0)
    assert link.startswith(store)  # built from the request's (checked) host
    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    check(page, shoot, f"{width}-32-reset-choose")
    reset_password = new_password(page, shoot, button="Set new password", done="Your password is reset",
                                  shot=f"{width}-33-reset-done")
    user.refresh_from_db()
    assert user.check_password(reset_password)

    # Signed in (log_in types the suite's password): change it from the account.
    user.set_password(PASSWORD)
    user.save()
    log_in(page, store, user)
    page.goto(store + reverse("accounts:password_change"))
    check(page, shoot, f"{width}-34-change-form")
    page.get_by_label("Old password").fill(PASSWORD)
    changed = new_password(page, shoot, button="Change password", done="Password changed",
                           shot=f"{width}-35-change-done")
    user.refresh_from_db()
    assert user.check_password(changed)
    assert page.js_errors == [], page.js_errors
