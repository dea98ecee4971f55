"""The catalogue offer of the current catalogue version, kept in this process's memory.

`catalogue_offer()` (models, package sizes, prices: two queries) is computed once per catalogue
version and reused by the catalogue page, the quote fragment, `/api/quote` and `/api/catalogue`
until a sync, a staff edit or a rates refresh makes a new version (`orders.catalogue_snapshot`
decides when; `storefront.catalogue_version` says what bumps it). Checkout never reads this: it
recomputes the price from the database and asks to confirm a changed one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from orders.catalogue_offer import CatalogueOffer, catalogue_offer
from orders.catalogue_selectors import (
    CHOOSE_A_MODEL,
    MODEL_UNAVAILABLE,
    ModelOffer,
    QuoteOutcome,
    price_custom_amount,
)
from orders.catalogue_snapshot import Snapshot, VersionedSnapshot
from payments.currencies import Currency, accepted_currencies


@dataclass(frozen=True)
class CatalogueData:
    """What every catalogue page and quote of one catalogue version is computed from."""

    offer: CatalogueOffer
    models_by_id: Mapping[str, ModelOffer]
    currencies: tuple[Currency, ...]
    rates: Mapping[str, Decimal]


def _catalogue_data_load(rates: Mapping[str, Decimal]) -> CatalogueData:
    offer = catalogue_offer()
    return CatalogueData(
        offer=offer,
        models_by_id={listing.model.id: listing.model for listing in offer.listings},
        currencies=tuple(accepted_currencies()),
        rates=dict(rates),
    )


_CATALOGUE = VersionedSnapshot(_catalogue_data_load)


def catalogue_snapshot() -> Snapshot[CatalogueData]:
    """This process's catalogue data for the current version (one cache round trip when warm)."""
    return _CATALOGUE.current()


def quote_outcome(*, model_id: str | None, tokens_raw: str | None, currencies: Sequence[Currency] = ()) -> QuoteOutcome:
    """Answer "what would `tokens_raw` tokens of `model_id` cost?" for the quote fragment and API.

    Only models on offer can be quoted; `currencies` are the ones to convert the total into, at the
    version's cached rates. No query while the catalogue version is unchanged.
    """
    if not model_id:
        return QuoteOutcome(model=None, token_count=None, quote=None, input_errors=(CHOOSE_A_MODEL,))
    data = catalogue_snapshot().data
    model = data.models_by_id.get(model_id)
    if model is None:
        return QuoteOutcome(model=None, token_count=None, quote=None, input_errors=(MODEL_UNAVAILABLE,))
    rates = data.rates if currencies else {}
    return price_custom_amount(model, tokens_raw or "", rules=data.offer.rules, currencies=currencies, rates=rates)


__all__ = ["CatalogueData", "catalogue_snapshot", "quote_outcome"]
