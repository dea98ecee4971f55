"""Test environment defaults, set before Django reads its settings.

Tests run in sandbox mode with debug-level settings unless the caller says otherwise; CI adds
DATABASE_URL and REDIS_URL so the suite runs on PostgreSQL and Redis.
"""

import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SANDBOX", "true")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("SANDBOX_CALLBACK_DELAY_SCALE", "0.001")
os.environ["TOKENSTORE_IGNORE_DOTENV"] = "1"
