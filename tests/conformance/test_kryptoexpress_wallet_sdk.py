"""The official `kryptoexpress-sdk` against the gateway sandbox's wallet endpoints, over real HTTP.

If the vendor's own client can call `GET /wallet` and `POST /wallet/withdrawal` on the sandbox
and parse every answer into its typed models, the sandbox speaks the gateway's language — and the
store's own client, tested against the same sandbox, does too.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

kryptoexpress = pytest.importorskip("kryptoexpress", reason="kryptoexpress-sdk is not installed")

from kryptoexpress import KryptoExpressClient as SdkClient  # noqa: E402
from kryptoexpress.errors import AuthError, ValidationError  # noqa: E402
from kryptoexpress.models.wallet import Wallet, Withdrawal  # noqa: E402

from payments.client import get_kryptoexpress_client  # noqa: E402
from payments.sandbox.models import SandboxPayment, SandboxWithdrawal  # noqa: E402
from tests.live_sandboxes import use_live_gateway  # noqa: E402
from tests.orders.refund_support import BTC_REFUND_ADDRESS, TRON_REFUND_ADDRESS, paid_sandbox_order  # noqa: E402

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sdk(live_server, settings):
    api_url = use_live_gateway(settings, live_server.url)
    client = SdkClient(api_key=settings.KRYPTO_EXPRESS_API_KEY, base_url=api_url, timeout=10)
    yield client
    client.close()


def test_sdk_reads_wallet_balances(sdk):
    btc = paid_sandbox_order()
    usdt = paid_sandbox_order(crypto="USDT_TRC20", total=Decimal("5.00"))
    wallet = sdk.wallet.get()
    assert isinstance(wallet, Wallet)
    assert Decimal(str(wallet.BTC)) == btc.crypto_amount
    assert Decimal(str(wallet.USDT_TRC20)) == usdt.crypto_amount
    assert wallet.ETH == 0
    # the store's own client reads the same figures exactly
    balances = get_kryptoexpress_client().get_wallet()
    assert balances["BTC"] == btc.crypto_amount and balances["USDT_TRC20"] == Decimal("5")


def test_sdk_dry_run_then_single_withdrawal_then_refused_second(sdk):
    order = paid_sandbox_order()
    payment_id = int(order.payment_id)
    dry = sdk.wallet.withdraw_single(
        payment_id=payment_id, crypto_currency="BTC", to_address=BTC_REFUND_ADDRESS, only_calculate=True
    )
    assert isinstance(dry, Withdrawal) and dry.only_calculate is True and dry.tx_id_list == []
    assert dry.payment_id == payment_id and dry.withdraw_type.value == "SINGLE"
    assert dry.receiving_amount and dry.blockchain_fee_amount and dry.service_fee_amount
    assert SandboxWithdrawal.objects.count() == 0

    sent = sdk.wallet.withdraw_single(payment_id=payment_id, crypto_currency="BTC", to_address=BTC_REFUND_ADDRESS)
    assert sent.only_calculate is False and len(sent.tx_id_list) == 1 and sent.id
    assert sent.to_address == BTC_REFUND_ADDRESS and sent.create_datetime
    assert SandboxPayment.objects.get(pk=payment_id).is_withdrawn
    assert get_kryptoexpress_client().get_payment(order.payment_hash).is_withdrawn

    with pytest.raises(ValidationError) as excinfo:
        sdk.wallet.withdraw_single(payment_id=payment_id, crypto_currency="BTC", to_address=BTC_REFUND_ADDRESS)
    assert excinfo.value.status_code == 400 and "already withdrawn" in excinfo.value.message
    assert SandboxWithdrawal.objects.count() == 1


def test_sdk_withdraw_all_sends_every_unwithdrawn_payment_of_a_currency(sdk):
    first = paid_sandbox_order(crypto="USDT_TRC20", total=Decimal("5.00"))
    second = paid_sandbox_order(crypto="USDT_TRC20", total=Decimal("3.00"))
    dry = sdk.wallet.calculate_all(crypto_currency="USDT_TRC20", to_address=TRON_REFUND_ADDRESS)
    assert Decimal(str(dry.total_withdrawal_amount)) == Decimal("8") and dry.payment_id is None
    sent = sdk.wallet.withdraw_all(crypto_currency="USDT_TRC20", to_address=TRON_REFUND_ADDRESS)
    assert sent.withdraw_type.value == "ALL" and len(sent.tx_id_list) == 1
    assert all(SandboxPayment.objects.get(pk=int(o.payment_id)).is_withdrawn for o in (first, second))
    assert sdk.wallet.get().USDT_TRC20 == 0


@pytest.mark.parametrize(
    "address",
    ["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", TRON_REFUND_ADDRESS],
)
def test_sdk_sees_address_format_refusals(sdk, address):
    order = paid_sandbox_order()
    with pytest.raises(ValidationError) as excinfo:
        sdk.wallet.withdraw_single(
            payment_id=int(order.payment_id), crypto_currency="BTC", to_address=address, only_calculate=True
        )
    assert excinfo.value.details[0]["field"] == "toAddress"
    assert SandboxWithdrawal.objects.count() == 0


def test_sdk_without_a_valid_key_is_refused(sdk, settings):
    bad = SdkClient(api_key="wrong-key", base_url=settings.KRYPTO_EXPRESS_API_URL, timeout=10)
    with pytest.raises(AuthError):
        bad.wallet.get()
    bad.close()
