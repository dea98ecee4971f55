"""factory_boy factories shared by every suite."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from accounts.models import User
from openrouter.models import AIModel
from orders.models import AITokenOrder, OrderStatus, TokenPackage


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery-staple")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffFactory(UserFactory):
    email = factory.Sequence(lambda n: f"staff{n}@example.com")
    is_staff = True
    is_superuser = True


class AIModelFactory(factory.django.DjangoModelFactory):
    """Defaults to Claude 3 Sonnet's real prices: $3/M prompt, $15/M completion."""

    class Meta:
        model = AIModel
        django_get_or_create = ("id",)

    id = factory.Sequence(lambda n: f"vendor/model-{n}")
    name = factory.LazyAttribute(lambda o: f"Model {o.id}")
    context_length = 200000
    prompt_price = Decimal("0.000003")
    completion_price = Decimal("0.000015")
    offered = True
    available = True
    last_seen_at = factory.LazyFunction(timezone.now)


class TokenPackageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TokenPackage

    name = factory.Sequence(lambda n: f"Package {n}")
    share = Decimal("0.5")
    position = factory.Sequence(lambda n: n)
    active = True


class OrderFactory(factory.django.DjangoModelFactory):
    """A pending Claude 3 Sonnet order for 100,000 tokens ($0.90 base... see pricing)."""

    class Meta:
        model = AITokenOrder

    user = factory.SubFactory(UserFactory)
    token_count = 200000
    model_id = "anthropic/claude-3-sonnet"
    prompt_price = Decimal("0.000003")
    completion_price = Decimal("0.000015")
    price_per_token = Decimal("0.000009")
    markup_rate = Decimal("0.20")
    base_usd_cost = Decimal("1.80")
    markup_amount = Decimal("0.36")
    total_usd_cost = Decimal("2.16")
    crypto_type = "BTC"
    crypto_amount = Decimal("0.00002227")
    payment_id = factory.Sequence(lambda n: str(1000 + n))
    payment_hash = factory.Sequence(lambda n: f"{n:064x}")
    address = factory.Sequence(lambda n: f"bc1qsandbox{n:030d}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=2))
    status = OrderStatus.PENDING
