"""Official SDKs against the sandboxes, over real HTTP (live_server).

The store keeps its own thin clients; these tests prove the sandboxes answer in shapes the
official SDKs (`openrouter`, `kryptoexpress-sdk`) parse without error, i.e. that the sandboxes
imitate the real services closely enough to trust them.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def kryptoexpress_sdk(live_server, transactional_db, settings):
    from kryptoexpress import KryptoExpressClient

    settings.SITE_URL = live_server.url
    with KryptoExpressClient(api_key=settings.SANDBOX_KRYPTO_EXPRESS_KEY,
                             base_url=live_server.url + "/sandbox/kryptoexpress/api") as client:
        yield client
