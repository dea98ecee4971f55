"""Keeps ``AIModel`` rows in step with OpenRouter's catalogue (``GET /models``).

Rules (issue 2, "OpenRouter catalogue"):
- free ("0"), variable ("-1"), missing or unparseable prices — and per-request fees, which
  would eat into a key's limit without buying tokens — make a model unsellable: it is never
  offered, and the reason is kept in ``pricing_issue`` for staff;
- a model gone from the catalogue becomes ``available=False`` (so not orderable) but keeps the
  staff's ``offered`` choice for when it comes back;
- a failed sync changes nothing (the last good prices stay) and says why in the log;
- ``settings.DEFAULT_MODEL`` and ``settings.OFFERED_MODELS_DEFAULT`` are offered when first seen
  (a new row) with a usable price, so a fresh store sells a useful range; after that ``offered``
  belongs to staff.
The whole sync is a constant number of queries however large the catalogue (bulk operations).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from openrouter.client import CatalogueModel, OpenRouterClient, OpenRouterError, get_openrouter_client
from openrouter.models import AIModel
from storefront.catalogue_version import catalogue_version_bump
from storefront.heartbeats import record_sync_ok

logger = logging.getLogger("openrouter.catalogue")

_ID_MAX = AIModel._meta.get_field("id").max_length
_NAME_MAX = AIModel._meta.get_field("name").max_length
_CONTEXT_MAX = 2_147_483_647  # PositiveIntegerField on every backend
_PRICE_MAX = Decimal(10) ** 9  # max_digits 24 - decimal_places 15
_PRICE_QUANTUM = Decimal("1e-15")

ISSUE_MISSING = "missing price"
ISSUE_VARIABLE = "variable price"
ISSUE_FREE = "free"
ISSUE_REQUEST_FEE = "per-request fee"
ISSUE_UNREPRESENTABLE = "price out of range"


@dataclass(frozen=True)
class SyncResult:
    """What one sync did. ``ok`` False means nothing was changed and ``error`` says why."""

    ok: bool
    seen: int = 0
    created: int = 0
    updated: int = 0
    gone: int = 0
    unsellable: int = 0
    error: str = ""


@dataclass(frozen=True)
class OfferResult:
    """Outcome of a staff offer/withdraw: how many rows changed, which ids could not be offered."""

    changed: int
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Prices:
    prompt: Decimal | None
    completion: Decimal | None
    issue: str

    @property
    def sellable(self) -> bool:
        return not self.issue


def _storable(price: Decimal | None) -> Decimal | None:
    """The price as the DecimalField can hold it exactly, or None."""
    if price is None or abs(price) >= _PRICE_MAX:
        return None
    return price if price == price.quantize(_PRICE_QUANTUM) else None


def _judge_prices(model: CatalogueModel) -> _Prices:
    """Why (if at all) this model cannot be sold at its catalogue prices."""
    prompt, completion = model.prompt_price, model.completion_price
    stored_prompt, stored_completion = _storable(prompt), _storable(completion)
    if prompt is None or completion is None:
        issue = ISSUE_MISSING
    elif prompt < 0 or completion < 0:
        issue = ISSUE_VARIABLE
    elif prompt == 0 or completion == 0:
        issue = ISSUE_FREE
    elif model.request_price is not None and model.request_price != 0:
        issue = ISSUE_REQUEST_FEE
    elif stored_prompt is None or stored_completion is None or stored_prompt == 0 or stored_completion == 0:
        issue = ISSUE_UNREPRESENTABLE
    else:
        issue = ""
    return _Prices(prompt=stored_prompt, completion=stored_completion, issue=issue)


def _context_length(value: int | None) -> int | None:
    return value if value is not None and 0 <= value <= _CONTEXT_MAX else None


def _failed(reason: str) -> SyncResult:
    # The reason comes from the client, which scrubs secrets from everything it reports.
    logger.warning("catalogue_sync failed, keeping the last good prices: %s", reason)
    return SyncResult(ok=False, error=reason)


def catalogue_sync(*, client: OpenRouterClient | None = None) -> SyncResult:
    """Upsert every catalogue model, mark vanished ones unavailable, never offer unsellable ones.

    Called by beat (``openrouter.tasks.sync_catalogue``) and ``manage.py sync_models``. A sync
    that cannot trust what it received (error, empty catalogue, not one usable price) changes
    nothing, so a bad minute at OpenRouter never takes the store's catalogue down.
    """
    client = client or get_openrouter_client()
    try:
        remote = client.list_models()
    except OpenRouterError as exc:
        return _failed(exc.message)

    catalogue: dict[str, CatalogueModel] = {}
    for model in remote:
        if len(model.id) > _ID_MAX:
            logger.warning("catalogue_sync skipped a model id longer than %d characters", _ID_MAX)
            continue
        catalogue[model.id] = model
    if not catalogue:
        return _failed("the catalogue is empty")
    verdicts = {model_id: _judge_prices(model) for model_id, model in catalogue.items()}
    if not any(verdict.sellable for verdict in verdicts.values()):
        return _failed("no model in the catalogue has a usable price")

    offered_by_default = {settings.DEFAULT_MODEL, *settings.OFFERED_MODELS_DEFAULT}
    now = timezone.now()
    with transaction.atomic():
        # Locks the rows (PostgreSQL) so a staff edit or a second sync waits for this one.
        existing = AIModel.objects.select_for_update().in_bulk()
        rows = []
        created = 0
        for model_id, model in catalogue.items():
            verdict = verdicts[model_id]
            current = existing.get(model_id)
            if current is None:
                created += 1
                offered = verdict.sellable and model_id in offered_by_default
            else:
                offered = current.offered and verdict.sellable
            rows.append(
                AIModel(
                    id=model_id,
                    name=model.name[:_NAME_MAX],
                    context_length=_context_length(model.context_length),
                    prompt_price=verdict.prompt,
                    completion_price=verdict.completion,
                    pricing_issue=verdict.issue,
                    offered=offered,
                    available=True,
                    last_seen_at=now,
                    updated_at=now,
                )
            )
        AIModel.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["id"],
            update_fields=[
                "name",
                "context_length",
                "prompt_price",
                "completion_price",
                "pricing_issue",
                "offered",
                "available",
                "last_seen_at",
                "updated_at",
            ],
        )
        gone_ids = [model_id for model_id, row in existing.items() if row.available and model_id not in catalogue]
        if gone_ids:
            AIModel.objects.filter(pk__in=gone_ids).update(available=False, updated_at=now)

    withdrawn = [
        model_id
        for model_id, row in existing.items()
        if model_id in catalogue and row.offered and not verdicts[model_id].sellable
    ]
    if withdrawn:
        logger.warning(
            "catalogue_sync withdrew %d offered model(s) with unusable prices: %s",
            len(withdrawn),
            ", ".join(sorted(withdrawn)[:20]),
        )
    if gone_ids:
        logger.warning(
            "catalogue_sync: %d model(s) left the catalogue: %s", len(gone_ids), ", ".join(sorted(gone_ids)[:20])
        )
    result = SyncResult(
        ok=True,
        seen=len(catalogue),
        created=created,
        updated=len(catalogue) - created,
        gone=len(gone_ids),
        unsellable=sum(1 for verdict in verdicts.values() if not verdict.sellable),
    )
    logger.info(
        "catalogue_sync ok seen=%d created=%d updated=%d gone=%d unsellable=%d",
        result.seen,
        result.created,
        result.updated,
        result.gone,
        result.unsellable,
    )
    catalogue_version_bump()
    record_sync_ok()
    return result


def catalogue_set_offered(*, model_ids: list[str], offered: bool) -> OfferResult:
    """Staff offer or withdraw models. Only available, properly priced models can be offered."""
    queryset = AIModel.objects.filter(pk__in=list(model_ids))
    if offered:
        sellable = queryset.filter(available=True, pricing_issue="", prompt_price__gt=0, completion_price__gt=0)
        sellable_ids = set(sellable.values_list("pk", flat=True))
        refused = sorted(set(model_ids) - sellable_ids)
        changed = AIModel.objects.filter(pk__in=sellable_ids, offered=False).update(
            offered=True, updated_at=timezone.now()
        )
        catalogue_version_bump()
        return OfferResult(changed=changed, refused=refused)
    changed = queryset.filter(offered=True).update(offered=False, updated_at=timezone.now())
    catalogue_version_bump()
    return OfferResult(changed=changed)


def is_offerable(model: AIModel) -> bool:
    """The same test ``catalogue_set_offered`` applies, for one row already in memory."""
    return bool(
        model.available
        and not model.pricing_issue
        and model.prompt_price is not None
        and model.completion_price is not None
        and model.prompt_price > 0
        and model.completion_price > 0
    )
