"""Run callables in real threads at the same moment (for races on PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def run_together(*targets: Callable[[], object]) -> tuple[list[object], list[BaseException]]:
    """Start every target at once behind a barrier; each thread closes its own DB connection.

    Returns the targets' results and the exceptions they raised (for the test to assert on).
    """
    errors: list[BaseException] = []
    results: list[object] = []
    barrier = threading.Barrier(len(targets), timeout=10)

    def wrap(target: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                barrier.wait()
                results.append(target())
            except BaseException as exc:  # surfaced by the test
                errors.append(exc)
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors
