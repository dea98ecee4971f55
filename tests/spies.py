"""Counting calls to a real method while letting them through (a spy, not a stub)."""

from __future__ import annotations


def spy_on(monkeypatch, owner: type, name: str) -> list:
    """Wrap `owner.name` so each call records its instance and then runs the real method.

    Returns the list the calls are recorded in; `monkeypatch` restores the method after the test.
    """
    calls: list = []
    real = getattr(owner, name)

    def spy(self, *args, **kwargs):
        calls.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return calls
