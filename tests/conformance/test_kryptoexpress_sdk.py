"""The official KryptoExpress SDK calls every gateway sandbox endpoint the store uses and parses each answer."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.live]


def test_payment_create_and_read(kryptoexpress_sdk, live_server):
    from kryptoexpress.models.common import CryptoCurrency, FiatCurrency

    created = kryptoexpress_sdk.payments.create_payment(
        crypto_currency=CryptoCurrency.BTC,
        fiat_currency=FiatCurrency.USD,
        fiat_amount=2.16,
        callback_url=live_server.url + "/payments/kryptoexpress/callback/",
        callback_secret="conformance-secret",
    )
    assert created.hash and created.address and created.crypto_amount > 0
    read = kryptoexpress_sdk.payments.get_by_hash(created.hash)
    assert read.hash == created.hash and read.is_paid is False
    assert (read.payment_type.value, read.fiat_amount) == ("PAYMENT", 2.16)


def test_prices(kryptoexpress_sdk):
    from kryptoexpress.models.common import CryptoCurrency, FiatCurrency

    prices = kryptoexpress_sdk.currencies.get_prices(
        crypto_currencies=[CryptoCurrency.BTC, CryptoCurrency.USDT_TRC20], fiat_currency=FiatCurrency.USD
    )
    assert {(p.crypto_currency, p.fiat_currency) for p in prices.prices} == {
        (CryptoCurrency.BTC, FiatCurrency.USD), (CryptoCurrency.USDT_TRC20, FiatCurrency.USD)
    }
    assert all(p.price > 0 for p in prices.prices)
