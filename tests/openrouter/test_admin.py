"""Staff's AIModel admin: prices per million, offer/withdraw, unsellable models refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from openrouter.admin import per_million
from openrouter.models import AIModel
from tests.factories import AIModelFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:openrouter_aimodel_changelist"


@pytest.mark.parametrize(
    ("price", "shown"),
    [
        (Decimal("0.000003"), "$3.00"),
        (Decimal("0.000015"), "$15.00"),
        (Decimal("0.0000025"), "$2.50"),
        (Decimal("0.000000075"), "$0.075"),
        (Decimal("0.00000012"), "$0.12"),
        (Decimal("0"), "—"),
        (Decimal("-1"), "—"),
        (None, "—"),
    ],
)
def test_per_million_display(price, shown):
    assert per_million(price) == shown


def test_changelist_shows_prices_per_million_and_blended(staff_client, sonnet):
    response = staff_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    content = response.content.decode()
    assert "anthropic/claude-3-sonnet" in content
    assert "$3.00" in content and "$15.00" in content and "$9.00" in content


def test_changelist_query_count_does_not_grow_with_models(staff_client, django_assert_max_num_queries):
    AIModelFactory.create_batch(3)
    with django_assert_max_num_queries(12) as few:
        assert staff_client.get(reverse(CHANGELIST)).status_code == 200
    AIModelFactory.create_batch(40)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert staff_client.get(reverse(CHANGELIST)).status_code == 200


def test_changelist_search_and_filters(staff_client, sonnet):
    AIModelFactory(id="openai/gpt-4o", offered=False)
    response = staff_client.get(reverse(CHANGELIST), {"q": "gpt-4o"})
    assert "openai/gpt-4o" in response.content.decode()
    assert "anthropic/claude-3-sonnet" not in response.content.decode()
    response = staff_client.get(reverse(CHANGELIST), {"offered__exact": "1"})
    assert "anthropic/claude-3-sonnet" in response.content.decode()
    assert "openai/gpt-4o" not in response.content.decode()


def test_offer_action_offers_priced_models_and_refuses_others(staff_client):
    AIModelFactory(id="ok/model", offered=False)
    AIModelFactory(
        id="x/free", offered=False, prompt_price=Decimal(0), completion_price=Decimal(0), pricing_issue="free"
    )
    response = staff_client.post(
        reverse(CHANGELIST), {"action": "offer", "_selected_action": ["ok/model", "x/free"]}, follow=True
    )
    assert response.status_code == 200
    assert AIModel.objects.get(pk="ok/model").offered
    assert not AIModel.objects.get(pk="x/free").offered
    assert "Not offered" in response.content.decode()
    assert LogEntry.objects.filter(object_id="ok/model", change_message="Offered").exists()


def test_withdraw_action(staff_client, sonnet):
    staff_client.post(reverse(CHANGELIST), {"action": "withdraw", "_selected_action": [sonnet.pk]})
    assert not AIModel.objects.get(pk=sonnet.pk).offered


def _list_edit(staff_client, model, offered: bool):
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": model.pk,
        "_save": "Save",
    }
    if offered:
        data["form-0-offered"] = "on"
    return staff_client.post(reverse(CHANGELIST), data)


def test_list_editable_toggle_offers_a_priced_model(staff_client):
    model = AIModelFactory(id="ok/model", offered=False)
    response = _list_edit(staff_client, model, True)
    assert response.status_code == 302
    assert AIModel.objects.get(pk="ok/model").offered


def test_list_editable_toggle_refuses_an_unpriced_model(staff_client):
    model = AIModelFactory(
        id="openrouter/auto",
        offered=False,
        prompt_price=Decimal(-1),
        completion_price=Decimal(-1),
        pricing_issue="variable price",
    )
    response = _list_edit(staff_client, model, True)
    assert response.status_code == 200  # the form comes back with the error
    assert "Cannot be offered: variable price" in response.content.decode()
    assert not AIModel.objects.get(pk="openrouter/auto").offered


def test_staff_cannot_add_or_delete_models_or_edit_prices(staff_client, sonnet):
    page = staff_client.get(reverse("admin:openrouter_aimodel_change", args=[sonnet.pk]))
    assert page.status_code == 200 and "$9.00" in page.content.decode()
    assert staff_client.get(reverse("admin:openrouter_aimodel_add")).status_code == 403
    assert staff_client.get(reverse("admin:openrouter_aimodel_delete", args=[sonnet.pk])).status_code == 403
    staff_client.post(
        reverse("admin:openrouter_aimodel_change", args=[sonnet.pk]),
        {"offered": "on", "prompt_price": "0.1"},
    )
    assert AIModel.objects.get(pk=sonnet.pk).prompt_price == Decimal("0.000003")


def test_customers_cannot_reach_the_admin(user_client):
    response = user_client.get(reverse(CHANGELIST))
    assert response.status_code == 302


@pytest.mark.parametrize("model", ["sandboxkey", "sandboxaccount", "sandboxfault", "sandboxmodeloverride"])
def test_sandbox_admin_pages_render(staff_client, model):
    from openrouter.sandbox.faults import inject_status
    from openrouter.sandbox.models import SandboxAccount, SandboxKey

    SandboxAccount.load()
    SandboxKey.objects.create(hash="a" * 64, name="order-1", label="sk-or-v1-abc...xyz", limit=Decimal("1"))
    inject_status(500)
    assert staff_client.get(reverse(f"admin:openrouter_sandbox_{model}_changelist")).status_code == 200
