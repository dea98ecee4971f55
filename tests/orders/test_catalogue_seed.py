"""The four seed packages: created by a data migration and by `manage.py seed_packages`, idempotently."""

from __future__ import annotations

import importlib
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command

from orders.models import TokenPackage

pytestmark = pytest.mark.django_db

SEED = [("Starter", 1_000), ("Standard", 5_000), ("Professional", 10_000), ("Enterprise", 20_000)]
migration = importlib.import_module("orders.migrations.0005_seed_packages")


def packages() -> list[tuple[str, int]]:
    return list(TokenPackage.objects.order_by("position", "token_count").values_list("name", "token_count"))


def test_the_migration_seeds_the_four_packages_once():
    TokenPackage.objects.all().delete()

    migration.seed_packages(apps, None)
    migration.seed_packages(apps, None)

    assert packages() == SEED
    assert TokenPackage.objects.filter(active=True).count() == 4


def test_the_command_is_idempotent():
    TokenPackage.objects.all().delete()

    out = StringIO()
    call_command("seed_packages", stdout=out)
    call_command("seed_packages", stdout=out)

    assert packages() == SEED
    assert "Created packages: Starter, Standard, Professional, Enterprise." in out.getvalue()
    assert "All seed packages already exist." in out.getvalue()


def test_the_command_restores_a_missing_package_and_keeps_staff_edits():
    # given staff changed one package and deleted another
    call_command("seed_packages", stdout=StringIO())
    TokenPackage.objects.filter(name="Starter").update(token_count=2_500, active=False)
    TokenPackage.objects.filter(name="Enterprise").delete()

    # when
    call_command("seed_packages", stdout=StringIO())

    # then
    starter = TokenPackage.objects.get(name="Starter")
    assert (starter.token_count, starter.active) == (2_500, False)
    assert TokenPackage.objects.filter(name="Enterprise", token_count=20_000).count() == 1
    assert TokenPackage.objects.count() == 4


def test_unseeding_removes_only_untouched_seed_rows():
    TokenPackage.objects.all().delete()
    migration.seed_packages(apps, None)
    TokenPackage.objects.filter(name="Standard").update(token_count=6_000)

    migration.unseed_packages(apps, None)

    assert packages() == [("Standard", 6_000)]
