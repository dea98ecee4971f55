import re
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import User
from tests.factories import StaffFactory, UserFactory


def run() -> str:
    out = StringIO()
    call_command("ensure_demo_staff", stdout=out)
    return out.getvalue()


def printed_password(output: str) -> str:
    match = re.search(r"Password: (\S+)", output)
    assert match, output
    return match.group(1)


@pytest.mark.django_db
def test_creates_a_staff_account_in_sandbox_and_prints_working_credentials(settings):
    settings.SANDBOX = True

    output = run()

    staff = User.objects.get(is_staff=True)
    assert staff.email == "admin@example.com"
    assert staff.is_superuser and staff.is_active
    assert "admin@example.com" in output
    password = printed_password(output)
    assert len(password) >= 16
    assert staff.check_password(password)


@pytest.mark.django_db
def test_is_idempotent_and_never_reprints_the_password(settings):
    settings.SANDBOX = True
    first = run()
    password = printed_password(first)

    second = run()

    assert User.objects.filter(is_staff=True).count() == 1
    assert "already exists" in second
    assert password not in second
    assert "Password:" not in second
    assert User.objects.get(is_staff=True).check_password(password)


@pytest.mark.django_db
def test_random_password_differs_between_fresh_databases(settings):
    settings.SANDBOX = True
    first = printed_password(run())
    User.objects.all().delete()

    second = printed_password(run())

    assert first != second


@pytest.mark.django_db
def test_leaves_an_existing_staff_account_alone(settings):
    settings.SANDBOX = True
    staff = StaffFactory(email="owner@example.com")
    before = staff.password

    output = run()

    assert not User.objects.filter(email="admin@example.com").exists()
    assert "owner@example.com" in output
    assert "Password:" not in output
    staff.refresh_from_db()
    assert staff.password == before


@pytest.mark.django_db
def test_does_nothing_outside_sandbox_mode(settings):
    settings.SANDBOX = False

    output = run()

    assert not User.objects.exists()
    assert "Not in sandbox mode" in output
    assert "Password:" not in output


@pytest.mark.django_db
def test_promotes_a_leftover_customer_account_with_the_demo_address(settings):
    settings.SANDBOX = True
    leftover = UserFactory(email="admin@example.com")

    output = run()

    leftover.refresh_from_db()
    assert leftover.is_staff and leftover.is_superuser
    assert leftover.check_password(printed_password(output))
    assert User.objects.count() == 1
