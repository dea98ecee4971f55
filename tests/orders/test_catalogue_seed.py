"""The four seed packages: seeded by data migrations (0005, converted to shares by 0009) and by
`manage.py seed_packages`, idempotently."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from orders.models import TokenPackage

pytestmark = pytest.mark.django_db

SEED = [
    ("Starter", Decimal("0.05")),
    ("Standard", Decimal("0.25")),
    ("Professional", Decimal("0.5")),
    ("Enterprise", Decimal("1")),
]
BEFORE_SHARES = [("orders", "0007_key_expires_at")]
AFTER_SHARES = [("orders", "0010_i10_package_share_only")]


def packages() -> list[tuple[str, Decimal]]:
    return list(TokenPackage.objects.order_by("position", "share").values_list("name", "share"))


def migrate_to(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


@pytest.mark.django_db(transaction=True)
def test_the_migrations_turn_the_seed_token_counts_into_shares_of_the_maximum_and_back():
    # given the database as it was before shares, with the seed's rows and one staff added
    old_apps = migrate_to(BEFORE_SHARES)
    OldPackage = old_apps.get_model("orders", "TokenPackage")
    OldPackage.objects.all().delete()
    for name, count, position in [("Starter", 1_000, 10), ("Standard", 5_000, 20), ("Professional", 10_000, 30),
                                  ("Enterprise", 20_000, 40), ("Team", 3_000, 15)]:
        OldPackage.objects.create(name=name, token_count=count, position=position, active=True)
    try:
        # when
        migrate_to(AFTER_SHARES)
        # then the seed's proportions 1 : 5 : 10 : 20 are kept, Enterprise is the maximum
        shares = dict(TokenPackage.objects.values_list("name", "share"))
        assert shares == {
            "Starter": Decimal("0.05"), "Team": Decimal("0.15"), "Standard": Decimal("0.25"),
            "Professional": Decimal("0.5"), "Enterprise": Decimal("1"),
        }
        # and going back restores the token counts
        old_apps = migrate_to(BEFORE_SHARES)
        counts = dict(old_apps.get_model("orders", "TokenPackage").objects.values_list("name", "token_count"))
        assert counts == {"Starter": 1_000, "Team": 3_000, "Standard": 5_000, "Professional": 10_000,
                          "Enterprise": 20_000}
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_command_creates_the_four_packages_once():
    TokenPackage.objects.all().delete()
    out = StringIO()

    call_command("seed_packages", stdout=out)
    call_command("seed_packages", stdout=out)

    assert packages() == SEED
    assert "Created packages: Starter, Standard, Professional, Enterprise." in out.getvalue()
    assert "All seed packages already exist." in out.getvalue()


def test_the_command_never_overwrites_staff_edits():
    # given staff resized and hid Starter and deleted Enterprise
    call_command("seed_packages", stdout=StringIO())
    TokenPackage.objects.filter(name="Starter").update(share=Decimal("0.1"), active=False)
    TokenPackage.objects.filter(name="Enterprise").delete()
    # when
    call_command("seed_packages", stdout=StringIO())
    # then Starter is as staff left it and only the missing Enterprise came back
    starter = TokenPackage.objects.get(name="Starter")
    assert (starter.share, starter.active) == (Decimal("0.1"), False)
    assert TokenPackage.objects.filter(name="Enterprise", share=1).count() == 1
    assert TokenPackage.objects.count() == 4


def test_a_share_outside_zero_to_one_is_refused_by_the_database():
    from django.db import IntegrityError, transaction

    for share in (Decimal("0"), Decimal("1.5")):
        with pytest.raises(IntegrityError), transaction.atomic():
            TokenPackage.objects.create(name="Bad", share=share)
