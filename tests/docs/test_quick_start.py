"""README's Quick start is the contract with a new user: exactly two commands, the second of
which CI runs verbatim and the suite's CPU bench runs by default. When the test command
changes (as `-n 2` became `-n 3`), all three must change together."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "no bash block in README's Quick start"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_quick_start_is_two_commands_the_first_runs_a_night() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2, commands
    assert commands[0].endswith("uv run --locked python -m flows.nightly"), commands[0]
    assert " pytest " in commands[1], commands[1]


def test_ci_and_the_suite_bench_run_the_readmes_test_command() -> None:
    test_command = quick_start_commands()[1]
    ci_lines = [line.strip() for line in (REPO / ".ci/run").read_text().splitlines()]
    assert ci_lines[-1] == test_command, ci_lines[-1]

    sys.path.insert(0, str(REPO / "bench"))
    try:
        import bench_suite_cpu
    finally:
        sys.path.remove(str(REPO / "bench"))
    pytest_args = shlex.split(test_command.split(" pytest ", 1)[1])
    assert pytest_args == bench_suite_cpu.README_PYTEST_ARGS
