"""Public block-explorer links for a transaction id, per gateway currency (for customer emails and pages)."""

from __future__ import annotations

import re

_TX_ID = re.compile(r"^[0-9A-Fa-f]{64}$")
_EXPLORERS = {
    "BTC": "https://mempool.space/tx/{tx}",
    "TRX": "https://tronscan.org/#/transaction/{tx}",
    "USDT_TRC20": "https://tronscan.org/#/transaction/{tx}",
}


def explorer_tx_url(*, crypto_type: str, tx_id: str) -> str | None:
    """A link to `tx_id` on a public explorer, or None (unknown network or not a transaction id)."""
    template = _EXPLORERS.get(crypto_type)
    if template is None or not isinstance(tx_id, str) or not _TX_ID.match(tx_id):
        return None
    return template.format(tx=tx_id.lower())
