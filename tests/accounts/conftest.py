"""Fixtures for the account tests."""

from __future__ import annotations

import pytest
import time_machine
from django.utils import timezone

PASSWORD = "correct-horse-battery-staple"  # what tests.factories.UserFactory sets


@pytest.fixture
def frozen_clock():
    """Stop the clock so every attempt of a test lands in the same rate-limit window."""
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller
