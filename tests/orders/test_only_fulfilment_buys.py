"""Money rule 1 (docs/ARCHITECTURE.md, "Money rules").

`create_key` (the purchase) is reached from exactly one place, the fulfilment service.

Two independent checks:
1. the call graph, statically: no module but `orders/services/fulfilment.py` calls `create_key`,
   names it, or talks to `POST /keys` itself;
2. patch-and-exercise: with `OpenRouterClient.create_key` replaced by a spy, every Celery task,
   every store URL (as anonymous, customer and staff, GET and POST) and every admin action runs
   over orders in every status. The spy fails the test if it is reached from anywhere but
   `order_fulfil`, for an order not claimed from `paid`, or twice for one order.
"""

from __future__ import annotations

import ast
import inspect
import re
import secrets
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import responses
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from openrouter.client import CreatedKey, Credits, KeyInfo, OpenRouterClient, OpenRouterNotFound
from orders.models import AITokenOrder, OrderStatus
from tests.factories import OrderFactory, StaffFactory, UserFactory
from tests.orders.fulfilment_fakes import paid_order

ROOT = Path(settings.BASE_DIR)
PURCHASE_MODULE = Path("orders/services/fulfilment.py")
SKIP_DIRS = {".venv", "tests", "node_modules", "staticfiles", ".git", "__pycache__", ".broker"}


def _project_python_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if not SKIP_DIRS.intersection(rel.parts):
            files.append(rel)
    return files


def _project_trees() -> Iterator[tuple[Path, ast.AST]]:
    for rel in _project_python_files():
        yield rel, ast.parse((ROOT / rel).read_text(), filename=str(rel))


def _found_at_home_and_elsewhere(
    find: Callable[[ast.AST], list[int]], home: Path
) -> tuple[list[int], dict[str, list[int]]]:
    """The lines `find` reports in `home`, and by file everywhere else (where there must be none)."""
    at_home, elsewhere = [], {}
    for rel, tree in _project_trees():
        uses = find(tree)
        if rel == home:
            at_home = uses
        elif uses:
            elsewhere[str(rel)] = uses
    return at_home, elsewhere


def _create_key_uses(tree: ast.AST) -> list[int]:
    """Lines that call `create_key`, reference it as a value, or name it in a string (getattr)."""
    lines = []
    for node in ast.walk(tree):
        attribute = isinstance(node, ast.Attribute) and node.attr == "create_key"
        name = isinstance(node, ast.Name) and node.id == "create_key"
        string = isinstance(node, ast.Constant) and node.value == "create_key"
        if ((attribute or name) and isinstance(node.ctx, ast.Load)) or string:
            lines.append(node.lineno)
    return lines


def test_the_project_scan_sees_the_code():
    files = _project_python_files()
    assert PURCHASE_MODULE in files
    assert Path("openrouter/client.py") in files
    assert len(files) > 20


def test_only_the_fulfilment_service_calls_create_key():
    purchase_calls, offenders = _found_at_home_and_elsewhere(_create_key_uses, PURCHASE_MODULE)
    assert offenders == {}, f"create_key referenced outside {PURCHASE_MODULE}: {offenders}"
    assert len(purchase_calls) == 1, "the fulfilment service should buy in exactly one place"


# A limit raise buys tokens too: `update_key(..., limit=...)` lives only in the top-up service,
# which only `order_fulfil` calls.
RAISE_MODULE = Path("orders/services/top_up.py")


def _limit_raises(tree: ast.AST) -> list[int]:
    """Lines that call `update_key` with a `limit` keyword (or with `**kwargs` that could carry one)."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        named = (isinstance(func, ast.Attribute) and func.attr == "update_key") or (
            isinstance(func, ast.Name) and func.id == "update_key"
        )
        if named and any(kw.arg in ("limit", None) for kw in node.keywords):
            lines.append(node.lineno)
    return lines


def test_only_the_top_up_service_raises_a_key_limit_and_only_fulfilment_calls_it():
    raises, offenders = _found_at_home_and_elsewhere(_limit_raises, RAISE_MODULE)
    callers = []
    for rel, tree in _project_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Name | ast.Attribute) and getattr(node, "id", getattr(node, "attr", "")) == (
                "top_up_fulfil"
            ) and isinstance(node.ctx, ast.Load):
                callers.append(str(rel))
    assert offenders == {}, f"key limits changed outside {RAISE_MODULE}: {offenders}"
    assert len(raises) == 1, "the top-up service should raise a limit in exactly one place"
    assert set(callers) == {str(PURCHASE_MODULE)}, callers


def test_the_raise_scan_would_catch_an_offender():
    assert _limit_raises(ast.parse("c.update_key(h, limit=Decimal(5))\n")) == [1]
    assert _limit_raises(ast.parse("c.update_key(h, **changes)\n")) == [1]
    assert _limit_raises(ast.parse("c.update_key(h, disabled=True)\n")) == []


def test_nobody_posts_to_openrouter_keys_directly():
    # The adapter and its sandbox (the imitation server) are the only places that know the path.
    allowed = {Path("openrouter/client.py")}
    pattern = re.compile(r"""["'](?:[^"']*/)?keys/?["']""")
    offenders = []
    for rel in _project_python_files():
        if rel in allowed or rel.parts[:2] == ("openrouter", "sandbox"):
            continue
        for lineno, line in enumerate((ROOT / rel).read_text().splitlines(), 1):
            if pattern.search(line) and ("post" in line.lower() or "request" in line.lower()):
                offenders.append(f"{rel}:{lineno}")
    for template in list((ROOT / "templates").rglob("*.html")) + list((ROOT / "static").rglob("*.js")):
        if "api/v1/keys" in template.read_text(errors="ignore"):
            offenders.append(str(template.relative_to(ROOT)))
    assert offenders == []


def test_the_scan_would_catch_an_offender():
    sneaky = ast.parse("client = get_openrouter_client()\nclient.create_key(name='x', limit=1)\n")
    via_getattr = ast.parse("getattr(client, 'create_key')(name='x')\n")
    assert _create_key_uses(sneaky) == [2]
    assert _create_key_uses(via_getattr) == [1]


# --- patch and exercise ----------------------------------------------------------------------------


class PurchaseSpy:
    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.violations: list[str] = []
        self.raises: list[dict] = []
        self.keys: dict[str, KeyInfo] = {}

    def create_key(self, client, *, name: str, limit: Decimal, expires_at=None) -> CreatedKey:
        frames = [(Path(f.filename), f.function) for f in inspect.stack()[1:]]
        from_fulfil = any(
            str(path).endswith(str(PURCHASE_MODULE)) and function == "order_fulfil" for path, function in frames
        )
        if not from_fulfil:
            callers = [f"{p.name}:{fn}" for p, fn in frames[:8]]
            self.violations.append(f"create_key reached from {callers}")
        order_id = re.search(r"TS-[A-Za-z0-9_-]+", name)
        order = AITokenOrder.objects.filter(order_id=order_id.group(0) if order_id else "").first()
        if order is None or order.status != OrderStatus.FULFILLING:
            self.violations.append(f"create_key for {name!r} while the order is {getattr(order, 'status', None)}")
        elif order.events.filter(to_status=OrderStatus.PAID).count() < 1:
            self.violations.append(f"create_key for {name!r} that never entered paid")
        if any(call["name"] == name for call in self.calls):
            self.violations.append(f"second key for {name!r}")
        self.calls.append({"name": name, "limit": limit})
        info = KeyInfo(
            hash=secrets.token_hex(32), name=name, label="sk-or-v1-abc...xyz", disabled=False, limit=limit,
            limit_remaining=limit, usage=Decimal(0), created_at=None, expires_at=expires_at,
        )
        return CreatedKey(info=info, key="sk-or-v1-" + secrets.token_hex(32))


def _spy_get_key(self, key_hash: str) -> KeyInfo:
    info = self.keys.get(key_hash)
    if info is None:
        raise OpenRouterNotFound("HTTP 404", status_code=404)
    return info


def _spy_update_key(self, client, key_hash: str, *, disabled=None, limit=None) -> KeyInfo:
    """A limit raise is a purchase: only `order_fulfil`, for a top-up claimed from paid, once per order."""
    info = self.keys.get(key_hash)
    if info is None:
        raise OpenRouterNotFound("HTTP 404", status_code=404)
    if limit is not None:
        frames = [(Path(f.filename), f.function) for f in inspect.stack()[1:]]
        if not any(str(p).endswith(str(PURCHASE_MODULE)) and fn == "order_fulfil" for p, fn in frames):
            self.violations.append(f"limit raise reached from {[f'{p.name}:{fn}' for p, fn in frames[:8]]}")
        # the top-up being raised: claimed, with this absolute target stored before the call
        raising = AITokenOrder.objects.filter(
            top_up_of__key_hash=key_hash, status=OrderStatus.FULFILLING, top_up_target_limit_usd=limit
        )
        if raising.count() != 1:
            self.violations.append(f"limit raise of {key_hash[:8]} to {limit} with no claimed top-up for it")
        elif any(o.events.filter(to_status=OrderStatus.PAID).count() < 1 for o in raising):
            self.violations.append("limit raise for a top-up that never entered paid")
        self.raises.append({"key_hash": key_hash, "limit": limit})
    info = KeyInfo(**{**info.__dict__, "limit": limit if limit is not None else info.limit,
                      "limit_remaining": limit if limit is not None else info.limit_remaining,
                      "disabled": info.disabled if disabled is None else disabled})
    self.keys[key_hash] = info
    return info


PurchaseSpy.get_key = _spy_get_key
PurchaseSpy.update_key = _spy_update_key


@pytest.fixture
def spy(monkeypatch):
    spy = PurchaseSpy()

    def not_found(self, key_hash, **kwargs):
        raise OpenRouterNotFound("HTTP 404", status_code=404)

    monkeypatch.setattr(OpenRouterClient, "create_key", lambda self, **kw: spy.create_key(self, **kw))
    monkeypatch.setattr(OpenRouterClient, "list_keys", lambda self, **kw: [])
    monkeypatch.setattr(
        OpenRouterClient, "update_key", lambda self, key_hash, **kw: spy.update_key(self, key_hash, **kw)
    )
    monkeypatch.setattr(OpenRouterClient, "get_key", lambda self, key_hash: spy.get_key(key_hash))
    monkeypatch.setattr(OpenRouterClient, "delete_key", not_found)
    monkeypatch.setattr(OpenRouterClient, "get_credits", lambda self: Credits(Decimal(100), Decimal(0)))
    monkeypatch.setattr(OpenRouterClient, "list_models", lambda self: [])
    # Anything else leaving the process (the payment gateway) fails like a network error.
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        yield spy


@pytest.fixture
def every_status(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    owner = UserFactory()
    orders = {status: OrderFactory(user=owner, status=status) for status in OrderStatus.values}
    orders[OrderStatus.PAID].delete()
    orders[OrderStatus.PAID] = paid_order(user=owner)
    return owner, orders


@pytest.fixture
def top_ups(every_status, spy):
    """A delivered key (known to the spy account) and a top-up of it in every status; one is paid."""
    owner, orders = every_status
    key_order = orders[OrderStatus.DELIVERED]
    key_hash = secrets.token_hex(32)
    AITokenOrder.objects.filter(pk=key_order.pk).update(key_hash=key_hash)
    key_order.key_hash = key_hash
    spy.keys[key_hash] = KeyInfo(
        hash=key_hash, name=f"Token Store {key_order.order_id}", label="sk-or-v1-abc...xyz", disabled=False,
        limit=key_order.base_usd_cost, limit_remaining=key_order.base_usd_cost, usage=Decimal(0),
        created_at=None, expires_at=None,
    )
    others = {s: OrderFactory(user=owner, status=s, top_up_of=key_order) for s in OrderStatus.values
              if s != OrderStatus.PAID}
    others[OrderStatus.PAID] = paid_order(user=owner, top_up_of=key_order)
    return key_order, others


def _routes(resolver: URLResolver, prefix: str = "") -> list[str]:
    routes = []
    for entry in resolver.url_patterns:
        pattern = str(entry.pattern)
        if isinstance(entry, URLResolver):
            if "sandbox" in pattern or "admin" in pattern:
                continue  # the imitation servers are not the store; admin is exercised below
            routes.extend(_routes(entry, prefix + pattern))
        elif isinstance(entry, URLPattern) and not pattern.startswith("^"):
            routes.append(prefix + pattern)
    return routes


def _fill(route: str, order: AITokenOrder) -> str:
    route = re.sub(r"<(?:str:|slug:|path:)?order_id>", order.order_id, route)
    route = re.sub(r"<(?:int:)?pk>", str(order.pk), route)
    route = re.sub(r"<[^>]+>", "x", route)
    return "/" + route


def test_no_view_task_or_admin_action_buys_anything_but_fulfilment(client, every_status, spy, top_ups):
    owner, orders = every_status
    key_order, top_up_orders = top_ups
    all_orders = {**{f"o-{k}": v for k, v in orders.items()}, **{f"t-{k}": v for k, v in top_up_orders.items()}}
    staff = StaffFactory()

    # every store URL, every role, GET and POST
    routes = _routes(get_resolver())
    assert any("usage" in r for r in routes) and any("callback" in r for r in routes)
    for user in (None, owner, staff):
        client.logout()
        if user is not None:
            client.force_login(user)
        for route in routes:
            for order in all_orders.values():
                url = _fill(route, order)
                client.get(url)
                client.post(url, data={"token_count": "1000", "model": "anthropic/claude-3-sonnet"})

    # every admin action on every order
    client.force_login(staff)
    from orders.admin import AITokenOrderAdmin
    from orders.services.staff_actions import ACTIONS

    changelist = reverse("admin:orders_aitokenorder_changelist")
    for action in AITokenOrderAdmin.actions:
        client.post(changelist, {"action": action, "_selected_action": [o.pk for o in all_orders.values()]})
    form = {"note": "Exercising every staff action for the purchase-path test.", "reference": "REF-0001-TEST",
            "confirm": "on"}
    for slug in ACTIONS:
        for order in all_orders.values():
            url = reverse("admin:orders_aitokenorder_staff_action", args=[order.pk, slug])
            client.get(url)
            client.post(url, form)

    # every Celery task, with no arguments and with every order's pk
    from storefront.celery import app

    tasks = [task for name, task in app.tasks.items() if not name.startswith("celery.")]
    assert "orders.tasks.order_fulfil" in {t.name for t in tasks}
    for task in tasks:
        params = [p for p in inspect.signature(task.run).parameters.values() if p.default is p.empty]
        arg_sets = [()] if not params else [(o.pk,) for o in all_orders.values()]
        for args in arg_sets:
            task.apply(args=args)

    # then: only the paid order was ever bought for, once, through order_fulfil
    assert spy.violations == []
    paid = orders[OrderStatus.PAID]
    assert [c["name"] for c in spy.calls if paid.order_id in c["name"]] == [f"Token Store {paid.order_id}"]
    assert all(c["limit"] <= Decimal("20.00") for c in spy.calls)
    paid.refresh_from_db()
    assert paid.status == OrderStatus.DELIVERED
    for status in (OrderStatus.PENDING, OrderStatus.EXPIRED, OrderStatus.REFUNDED):
        assert not any(orders[status].order_id in c["name"] for c in spy.calls)
    # and no key was bought for a top-up; its key was raised at most once, for the one paid top-up —
    # unless a staff action above disabled the key first, which the top-up then refuses
    paid_top_up = top_up_orders[OrderStatus.PAID]
    paid_top_up.refresh_from_db()
    key_order.refresh_from_db()
    assert not any(o.order_id in c["name"] for o in top_up_orders.values() for c in spy.calls)
    if key_order.key_disabled:
        assert paid_top_up.status == OrderStatus.FAILED and spy.raises == []
    else:
        assert paid_top_up.status == OrderStatus.DELIVERED
        assert spy.raises == [{"key_hash": key_order.key_hash, "limit": key_order.base_usd_cost * 2}]


def test_a_paid_top_up_is_raised_once_by_fulfilment_only(client, every_status, spy, top_ups):
    # every store URL and every task, without staff actions: the paid top-up is delivered by one raise
    owner, orders = every_status
    key_order, top_up_orders = top_ups
    client.force_login(owner)
    for route in _routes(get_resolver()):
        for order in top_up_orders.values():
            client.get(_fill(route, order))
            client.post(_fill(route, order), data={"token_count": "1000", "top_up_of": key_order.order_id})
    from storefront.celery import app

    for name, task in app.tasks.items():
        if name.startswith("celery."):
            continue
        params = [p for p in inspect.signature(task.run).parameters.values() if p.default is p.empty]
        for args in [()] if not params else [(o.pk,) for o in top_up_orders.values()] * 2:
            task.apply(args=args)
    assert spy.violations == []
    assert spy.raises == [{"key_hash": key_order.key_hash, "limit": key_order.base_usd_cost * 2}]
    assert AITokenOrder.objects.get(pk=top_up_orders[OrderStatus.PAID].pk).status == OrderStatus.DELIVERED
    assert spy.calls == [c for c in spy.calls if orders[OrderStatus.PAID].order_id in c["name"]]


def test_the_spy_catches_a_purchase_from_elsewhere(db, spy):
    # a purchase made outside order_fulfil (here: straight from a test) is flagged
    order = OrderFactory(status=OrderStatus.PENDING)
    from openrouter.client import get_openrouter_client

    get_openrouter_client().create_key(name=f"Token Store {order.order_id}", limit=Decimal("1.00"))
    assert any("reached from" in v for v in spy.violations)
    assert any("while the order is pending" in v for v in spy.violations)
