import pytest
from django.contrib.auth import SESSION_KEY
from django.urls import reverse

from accounts.models import User
from accounts.services import EmailTaken, account_register
from tests.factories import UserFactory

SIGNUP_URL = "/accounts/signup/"
GOOD_PASSWORD = "violet-otter-parade-42"


def signup(client, email="new.customer@example.com", password1=GOOD_PASSWORD, password2=None, **extra):
    data = {"email": email, "password1": password1, "password2": password1 if password2 is None else password2}
    data.update(extra)
    return client.post(SIGNUP_URL, {k: v for k, v in data.items() if v is not ...})


def test_signup_url_is_named():
    assert reverse("accounts:signup") == SIGNUP_URL


@pytest.mark.django_db
def test_signup_page_renders_labelled_fields_with_autocomplete_hints(client):
    response = client.get(SIGNUP_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_email">Email</label>' in html
    assert 'type="email" name="email" autocomplete="email"' in html
    assert html.count('autocomplete="new-password"') == 2
    assert "style=" not in html
    assert "<script>" not in html  # no inline scripts (only src= scripts from base.html)


@pytest.mark.django_db
def test_signup_creates_account_signs_in_and_redirects_to_catalogue(client):
    # when
    response = signup(client, email="  New.Customer@Example.COM ")

    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("orders:catalogue")
    user = User.objects.get()
    assert user.email == "new.customer@example.com"
    assert user.check_password(GOOD_PASSWORD)
    assert not user.is_staff
    assert client.session[SESSION_KEY] == str(user.pk)


@pytest.mark.django_db
def test_signup_redirects_to_a_safe_next_url(client):
    response = signup(client, next="/orders/new/?model=anthropic/claude-3-sonnet")

    assert response.status_code == 302
    assert response["Location"] == "/orders/new/?model=anthropic/claude-3-sonnet"


@pytest.mark.django_db
def test_signup_next_from_query_string_is_kept_in_the_form(client):
    response = client.get(SIGNUP_URL + "?next=/orders/")

    assert '<input type="hidden" name="next" value="/orders/">' in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/phish",
        "//evil.example/",
        "///evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "http://testserver.evil.example/",
        " //evil.example",
    ],
)
def test_signup_refuses_open_redirects(client, next_url):
    response = signup(client, next=next_url)

    assert response.status_code == 302
    assert response["Location"] == reverse("orders:catalogue")
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_signed_in_customer_visiting_signup_is_sent_on(user_client):
    response = user_client.get(SIGNUP_URL)

    assert response.status_code == 302
    assert response["Location"] == reverse("orders:catalogue")


@pytest.mark.django_db
def test_mismatched_passwords_create_no_account(client):
    response = signup(client, password1=GOOD_PASSWORD, password2=GOOD_PASSWORD + "x")

    assert response.status_code == 200
    assert response.context["form"].has_error("password2", "password_mismatch")
    assert not User.objects.exists()
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("tiny1!", "password_too_short"),
        ("password", "password_too_common"),
        ("qwerty123", "password_too_common"),
        ("8675309123456", "password_entirely_numeric"),
        ("jonathan.harker", "password_too_similar"),
    ],
)
def test_weak_passwords_are_refused_by_djangos_validators(client, password, code):
    response = signup(client, email="jonathan.harker@example.com", password1=password)

    assert response.status_code == 200
    assert response.context["form"].has_error("password2", code)
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["ALICE@EXAMPLE.COM", "Alice@Example.com", " alice@example.com "])
def test_duplicate_email_in_any_case_is_refused_with_a_friendly_error(client, typed):
    # given
    UserFactory(email="alice@example.com")

    # when
    response = signup(client, email=typed)

    # then
    assert response.status_code == 200
    assert response.context["form"].has_error("email", "email_taken")
    assert "An account with this email already exists" in response.content.decode()
    assert User.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("existing", "typed"),
    [
        ("alice@example.com", "ａｌｉｃｅ@example.com"),  # fullwidth letters
        ("klaus@example.com", "\u212alaus@example.com"),  # KELVIN SIGN looks like K
        ("alice@example.com", "alice@exa\u200bmple.com"),  # zero-width space in the domain
    ],
)
def test_unicode_look_alikes_of_an_existing_email_are_duplicates(client, existing, typed):
    UserFactory(email=existing)

    response = signup(client, email=typed)

    assert response.status_code == 200
    assert response.context["form"].has_error("email", "email_taken")
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_homograph_domain_is_stored_as_punycode_not_as_a_look_alike(client):
    UserFactory(email="alice@example.com")

    response = signup(client, email="alice@ex\u0430mple.com")  # Cyrillic 'а'

    assert response.status_code == 302
    assert set(User.objects.values_list("email", flat=True)) == {"alice@example.com", "alice@xn--exmple-4nf.com"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "email",
    [
        "",
        "not-an-email",
        "alice@",
        "@example.com",
        "alice@@example.com",
        "alice@example..com",
        "alice@example.com\nBcc: victim@example.com",
        "al ice@example.com",
        "alice@exam\x00ple.com",
        "\x00",
        "\u0430lice@example.com",  # Cyrillic 'а' in the local part
        "\u0130nfo@example.com",  # dotted capital I lower-cases to two code points
        "alice\u202e@example.com",  # right-to-left override
        "<script>alert(1)</script>@example.com",
        "x" * 10_240 + "@example.com",
        "alice@" + "x" * 10_240 + ".com",
        "x@" + "ü" * 70 + ".com",
    ],
)
def test_invalid_or_hostile_emails_create_no_account(client, email):
    response = signup(client, email=email)

    assert response.status_code == 200
    assert response.context["form"].has_error("email")
    assert not User.objects.exists()
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
def test_ten_kilobyte_password_is_refused(client):
    response = signup(client, password1="Zq9!" * 2560)

    assert response.status_code == 200
    assert response.context["form"].has_error("password1", "max_length")
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["email", "password1", "password2"])
def test_missing_fields_create_no_account(client, missing):
    response = signup(client, **{missing: ...})

    assert response.status_code == 200
    assert response.context["form"].has_error(missing, "required")
    assert not User.objects.exists()


@pytest.mark.django_db
def test_empty_post_creates_no_account(client):
    response = client.post(SIGNUP_URL, {})

    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"email", "password1", "password2"}
    assert not User.objects.exists()


@pytest.mark.django_db
def test_errors_render_next_to_their_fields_and_are_linked_for_screen_readers(client):
    UserFactory(email="alice@example.com")

    html = signup(client, email="alice@example.com").content.decode()

    assert 'id="id_email_error"' in html
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="id_email_error"' in html


@pytest.mark.django_db
def test_hostile_next_value_is_escaped_when_rerendered(client):
    html = signup(client, email="bad", next='"><script>alert(1)</script>').content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&quot;&gt;&lt;script&gt;" in html


@pytest.mark.django_db
def test_account_register_turns_a_concurrent_duplicate_into_email_taken():
    # given: the form's duplicate check passed, then someone else took the address
    UserFactory(email="race@example.com")

    # when / then: the database's case-insensitive constraint has the last word
    with pytest.raises(EmailTaken):
        account_register(email="race@example.com", password=GOOD_PASSWORD)
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_signup_view_reports_a_race_lost_at_save_time(client, monkeypatch):
    def lose_the_race(*, email, password):
        raise EmailTaken(email)

    monkeypatch.setattr("accounts.views.account_register", lose_the_race)

    response = signup(client)

    assert response.status_code == 200
    assert response.context["form"].has_error("email", "email_taken")
    assert SESSION_KEY not in client.session
