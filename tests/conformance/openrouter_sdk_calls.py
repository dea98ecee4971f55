"""Run by test_openrouter_sdk.py in a separate interpreter: the official SDK's package is named
`openrouter`, like this project's OpenRouter app, so the two cannot be imported by one process.

Usage: python openrouter_sdk_calls.py BASE_URL API_KEY — calls every endpoint the store uses,
parses each answer with the SDK's models, and prints one JSON object with what it saw. Any
parse error is a traceback and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta


def main(base_url: str, api_key: str) -> dict:
    from openrouter import OpenRouter

    seen: dict = {}
    with OpenRouter(api_key=api_key, server_url=base_url) as client:
        page = client.models.list()
        models = page.result.data if hasattr(page, "result") else page.data
        seen["models"] = [
            {"id": m.id, "prompt": str(m.pricing.prompt), "completion": str(m.pricing.completion)} for m in models
        ]
        credits = client.credits.get_credits()
        seen["credits"] = {"total_credits": credits.data.total_credits, "total_usage": credits.data.total_usage}

        expires = datetime.now(UTC) + timedelta(days=30)
        created = client.api_keys.create(name="Token Store TS-conformance0001", limit=2.5, expires_at=expires)
        key_hash = created.data.hash
        seen["created"] = {"hash": key_hash, "has_key": bool(created.key), "limit": created.data.limit}
        listed = client.api_keys.list(include_disabled=True)
        seen["listed"] = [item.hash for item in listed.data]
        got = client.api_keys.get(hash=key_hash)
        seen["got"] = {"name": got.data.name, "disabled": got.data.disabled}
        patched = client.api_keys.update(hash=key_hash, disabled=True)
        seen["patched"] = {"disabled": patched.data.disabled}
        deleted = client.api_keys.delete(hash=key_hash)
        seen["deleted"] = deleted.DELETED is True
    return seen


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
