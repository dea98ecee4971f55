"""Customer emails. Each one links to the order page; none ever contains a key or secret."""

from __future__ import annotations
