import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.urls import reverse

from tests.accounts.conftest import PASSWORD
from tests.factories import UserFactory

RESET_URL = "/accounts/password_reset/"
NEW_PASSWORD = "brand-new-lantern-77"


def reset_link(message) -> str:
    match = re.search(r"https?://\S+/accounts/reset/\S+/\S+/", message.body)
    assert match, message.body
    return match.group(0)


def test_reset_urls_are_named():
    assert reverse("accounts:password_reset") == RESET_URL
    assert reverse("accounts:password_reset_done") == "/accounts/password_reset/done/"
    assert reverse("accounts:password_reset_confirm", args=["MQ", "set-password"]) == "/accounts/reset/MQ/set-password/"
    assert reverse("accounts:password_reset_complete") == "/accounts/reset/done/"


@pytest.mark.django_db
def test_reset_page_renders_an_email_field(client):
    html = client.get(RESET_URL).content.decode()

    assert '<label for="id_email">Email</label>' in html
    assert 'autocomplete="email"' in html


@pytest.mark.django_db
def test_reset_emails_a_working_single_use_link(client, mailoutbox):
    # given
    user = UserFactory(email="alice@example.com")

    # when: asked for in another case
    response = client.post(RESET_URL, {"email": "ALICE@Example.com"})

    # then: one email to the stored address, with a link on this host
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["alice@example.com"]
    assert message.subject == "Reset your Token Store password"
    link = reset_link(message)
    assert link.startswith("http://testserver/accounts/reset/")
    assert "expires in 72 hours" in message.body
    assert user.password not in message.body

    # and the link lets the customer choose a new password
    form_page = client.get(link, follow=True)
    assert form_page.context["validlink"] is True
    set_password_url = form_page.redirect_chain[-1][0]
    done = client.post(set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302
    assert done["Location"] == reverse("accounts:password_reset_complete")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert not user.check_password(PASSWORD)

    # and it works only once
    again = client.get(link, follow=True)
    assert again.context["validlink"] is False
    assert "doesn't work any more" in again.content.decode()


@pytest.mark.django_db
def test_reset_link_refuses_a_weak_new_password(client, mailoutbox):
    user = UserFactory()
    client.post(RESET_URL, {"email": user.email})
    page = client.get(reset_link(mailoutbox[0]), follow=True)

    response = client.post(page.redirect_chain[-1][0], {"new_password1": "123456789", "new_password2": "123456789"})

    assert response.status_code == 200
    assert response.context["form"].errors
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.django_db
def test_unknown_email_sends_nothing_and_looks_exactly_the_same(client, mailoutbox):
    UserFactory(email="alice@example.com")

    known = client.post(RESET_URL, {"email": "alice@example.com"})
    unknown = client.post(RESET_URL, {"email": "mallory@example.com"})

    assert len(mailoutbox) == 1
    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    done_page = client.get(unknown["Location"]).content.decode()
    assert "If an account exists" in done_page


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["inactive", "unusable_password"])
def test_no_email_for_accounts_that_cannot_reset(client, mailoutbox, kind):
    user = UserFactory(is_active=kind != "inactive")
    if kind == "unusable_password":
        user.set_unusable_password()
        user.save()

    response = client.post(RESET_URL, {"email": user.email})

    assert response.status_code == 302
    assert mailoutbox == []


@pytest.mark.django_db
def test_reset_link_uses_the_request_host_and_scheme(client, mailoutbox, settings):
    settings.ALLOWED_HOSTS = ["shop.example"]
    UserFactory(email="alice@example.com")

    client.post(RESET_URL, {"email": "alice@example.com"}, HTTP_HOST="shop.example", secure=True)

    assert reset_link(mailoutbox[0]).startswith("https://shop.example/accounts/reset/")


@pytest.mark.django_db
def test_reset_from_a_host_not_allowed_sends_nothing(client, mailoutbox):
    UserFactory(email="alice@example.com")

    response = client.post(RESET_URL, {"email": "alice@example.com"}, HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert not [m for m in mailoutbox if "alice@example.com" in m.to]  # (staff may get the error report)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "email", ["", "x" * 10_240, "alice@example.com\nBcc: victim@example.com", "\u0430lice@example.com"]
)
def test_hostile_reset_input_is_a_form_error_and_sends_nothing(client, mailoutbox, email):
    UserFactory(email="alice@example.com")

    response = client.post(RESET_URL, {"email": email})

    assert response.status_code == 200
    assert response.context["form"].has_error("email")
    assert mailoutbox == []


@pytest.mark.django_db
def test_tampered_reset_link_is_invalid(client, mailoutbox):
    user = UserFactory()
    client.post(RESET_URL, {"email": user.email})
    link = reset_link(mailoutbox[0])

    response = client.get(link[:-3] + "zz/", follow=True)

    assert response.context["validlink"] is False


@pytest.mark.django_db
def test_password_change_for_signed_in_customer(user_client, user):
    response = user_client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_change_done")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert user_client.session[SESSION_KEY] == str(user.pk)  # still signed in on this device


@pytest.mark.django_db
def test_password_change_needs_the_old_password(user_client, user):
    response = user_client.post(
        reverse("accounts:password_change"),
        {"old_password": "guess", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 200
    assert response.context["form"].has_error("old_password")
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.django_db
def test_password_change_needs_a_signed_in_customer(client):
    response = client.get(reverse("accounts:password_change"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login") + "?next=")


@pytest.mark.django_db
def test_the_request_only_queues_the_mail_the_same_way_for_every_address(
    client, mailoutbox, django_assert_num_queries, monkeypatch
):
    # given: tasks are queued, not run (what a worker deployment does)
    from accounts import tasks

    queued = []
    monkeypatch.setattr(tasks.send_password_reset, "delay", lambda **kwargs: queued.append(kwargs))
    UserFactory(email="alice@example.com")
    # when a known and an unknown address ask, with the same number of queries each
    with django_assert_num_queries(0):
        known = client.post(RESET_URL, {"email": "alice@example.com"})
    with django_assert_num_queries(0):
        unknown = client.post(RESET_URL, {"email": "mallory@example.com"})
    # then nothing was looked up or sent in the request: one task each, the same shape
    assert mailoutbox == []
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert [q["email"] for q in queued] == ["alice@example.com", "mallory@example.com"]
    assert {k: v for k, v in queued[0].items() if k != "email"} == {k: v for k, v in queued[1].items() if k != "email"}
    # and the worker sends the link to the account only
    tasks.send_password_reset.run(**queued[0])
    tasks.send_password_reset.run(**queued[1])
    assert [m.to for m in mailoutbox] == [["alice@example.com"]]
    assert "/accounts/reset/" in mailoutbox[0].body and queued[0]["domain"] == "testserver"
