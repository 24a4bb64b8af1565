"""The moto shims of ``sfn_moto`` that are not exercised on every run of the parity tests."""

from __future__ import annotations

from typing import Any

from tests.deployments.sfn_moto import moto_sfn_shims


class _StoppedBranch:
    """A Parallel branch's environment after another branch failed: no longer running."""

    def __init__(self) -> None:
        self.stack: list[Any] = [{"logical_date": "2026-10-17", "done": False}]

    def is_running(self) -> bool:
        return False


def test_a_stopped_branch_pops_its_timeout_not_its_state_input() -> None:
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

    env = _StoppedBranch()
    with moto_sfn_shims():
        TimeoutSeconds(7200).eval(env)  # type: ignore[arg-type]
        TimeoutSeconds(TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS, is_default=True).eval(env)  # type: ignore[arg-type]
    assert env.stack.pop() == TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS
    assert env.stack.pop() == 7200
    assert env.stack == [{"logical_date": "2026-10-17", "done": False}]


def test_without_the_shim_moto_skips_the_timeout_of_a_stopped_branch() -> None:
    """Guards the shim's reason: if moto starts pushing the timeout itself, drop the shim."""
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

    env = _StoppedBranch()
    TimeoutSeconds(7200).eval(env)  # type: ignore[arg-type]
    assert env.stack.pop() == {"logical_date": "2026-10-17", "done": False}
