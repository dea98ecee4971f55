import pytest

from accounts.models import User


@pytest.mark.django_db
def test_staff_can_add_a_user_in_the_admin_and_the_email_is_normalised(staff_client):
    assert staff_client.get("/admin/accounts/user/add/").status_code == 200

    response = staff_client.post(
        "/admin/accounts/user/add/",
        {
            "email": "  New.Person@Example.COM ",
            "password1": "violet-otter-parade-42",
            "password2": "violet-otter-parade-42",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(email="new.person@example.com")
    assert user.check_password("violet-otter-parade-42")


@pytest.mark.django_db
def test_admin_refuses_a_duplicate_email_in_another_case(staff_client, user):
    response = staff_client.post(
        "/admin/accounts/user/add/",
        {"email": user.email.upper(), "password1": "violet-otter-parade-42", "password2": "violet-otter-parade-42"},
    )

    assert response.status_code == 200
    assert User.objects.filter(email__iexact=user.email).count() == 1


@pytest.mark.django_db
def test_admin_user_list_and_change_pages_render(staff_client, user):
    assert staff_client.get("/admin/accounts/user/?q=customer").status_code == 200
    assert staff_client.get(f"/admin/accounts/user/{user.pk}/change/").status_code == 200
