"""What the hypothesis state machines over orders share: a frozen clock, a worker killed in the
middle of a step, and the run settings (so every machine explores as far and as patiently)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import time_machine
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test


class WorkerKilled(Exception):
    """Stands for the worker process dying at the patched step."""


def frozen_clock() -> tuple[time_machine.travel, time_machine.Coordinates]:
    """A clock stopped at now, moved only by the machine (`traveller.shift`); stop it in teardown."""
    clock = time_machine.travel(timezone.now(), tick=False)
    return clock, clock.start()


@contextmanager
def worker_killed_at(module: ModuleType, name: str) -> Iterator[None]:
    """Within the block, calling `module.name` kills the worker: the step stops there, nothing after it runs."""
    original = getattr(module, name)

    def killed(*args, **kwargs):
        raise WorkerKilled

    setattr(module, name, killed)
    try:
        yield
    except WorkerKilled:
        pass
    finally:
        setattr(module, name, original)


def run_machine(machine: type[RuleBasedStateMachine], *, max_examples: int) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
