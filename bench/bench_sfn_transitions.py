"""State transitions (the Step Functions bill) per night of the exported machine.

Walks the exported nightly definition along a successful night, counting every state
entered (a Parallel state and each state of each branch count, as AWS bills them), with
the load procedure running ``D`` and each check running ``CHECK`` seconds. The number of
Wait -> DescribeStatement -> Choice rounds comes from the machine's own wait rule (a tenth
of the time already waited, 2 s to 300 s). Next to it: the original design's loop (Lambda
submit, then Wait 30 s -> Lambda status -> Choice per round) and the Prefect flow's Data API
calls (long polls of up to 30 s). Cost at the Standard-workflow price of $0.025 per 1,000
state transitions.

    uv run --locked python bench/bench_sfn_transitions.py [--durations 60 600 3600 14400]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deployments.sfn_config import ExportConfig
from deployments.stepfunctions import export_definition
from flows.pipeline import nightly_pipeline
from tasks.redshift_data.target import RedshiftTarget

PRICE_PER_1000 = 0.025
ORIGINAL_WAIT = 30
LONG_POLL = 30


def polls(duration: float, config: ExportConfig) -> int:
    """Describe rounds until a statement of ``duration`` seconds is seen FINISHED."""
    waited, rounds = 0.0, 0
    while True:
        wait = min(
            config.max_poll_seconds,
            max(config.min_poll_seconds, round(waited * config.poll_growth)),
        )
        waited += wait
        rounds += 1
        if waited >= duration:
            return rounds


def walk(
    states: Mapping[str, Any], start: str, durations: Mapping[str, float], config: ExportConfig
) -> int:
    """States entered from ``start`` to the end of this scope on a successful night."""
    count, name, rounds_left = 0, start, dict.fromkeys(durations, -1)
    while True:
        state = states[name]
        count += 1
        kind = state["Type"]
        if kind == "Parallel":
            count += sum(
                walk(b["States"], b["StartAt"], durations, config) for b in state["Branches"]
            )
        if kind in ("Succeed", "Fail") or state.get("End"):
            return count
        if kind != "Choice":
            name = state["Next"]
            continue
        step = name.split(": ")[0]
        if name.endswith(": status?"):
            if rounds_left[step] < 0:
                rounds_left[step] = polls(durations[step], config)
            rounds_left[step] -= 1
            finished = rounds_left[step] == 0
            name = state["Choices"][0]["Next"] if finished else state["Choices"][4]["Next"]
        elif name.endswith(": has result?"):
            name = state["Choices"][0]["Next"]  # a check returns a (normally empty) result set
        elif name == "Check logical date":
            name = state["Choices"][1]["Next"]
        else:  # attached? / done? / offending?: a first execution submits, runs, passes
            name = state["Default"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--durations", type=float, nargs="+", default=[60, 600, 3600, 14400])
    parser.add_argument("--check-seconds", type=float, default=1.0)
    args = parser.parse_args()
    config = ExportConfig(target=RedshiftTarget(database="dev", workgroup_name="mystore"))
    pipeline = nightly_pipeline()
    definition = export_definition(pipeline, config)
    statements = [s for s in pipeline.steps if s.kind != "glue"]
    print(
        f"{'load':>8} {'export':>8} {'$/night':>9} {'original':>9} {'$/night':>9} {'flow calls':>11}"
    )
    for duration in args.durations:
        durations = {
            s.name: (duration if s.kind == "procedure" else args.check_seconds) for s in statements
        }
        export = walk(definition["States"], definition["StartAt"], durations, config)
        # original: per statement Submit, then (Wait, Status, Choice) per 30 s, then the end
        # state; its three Glue runs were scheduled outside the machine.
        original = sum(1 + 3 * max(1, math.ceil(d / ORIGINAL_WAIT)) + 1 for d in durations.values())
        # flow: per statement ListStatements + ExecuteStatement + long-poll describes
        # (+ GetStatementResult for a check); Glue runs not counted (same in both)
        flow_calls = sum(
            2 + max(1, math.ceil(d / LONG_POLL)) + (1 if name.startswith("check") else 0)
            for name, d in durations.items()
        )
        print(
            f"{duration / 60:>7.0f}m {export:>8} {export * PRICE_PER_1000 / 1000:>9.4f}"
            f" {original:>9} {original * PRICE_PER_1000 / 1000:>9.4f} {flow_calls:>11}"
        )
    print(
        f"load polls: export waits {config.min_poll_seconds}-{config.max_poll_seconds} s"
        f" (x{config.poll_growth} of time waited); original every {ORIGINAL_WAIT} s;"
        f" flow long-polls {LONG_POLL} s"
    )


if __name__ == "__main__":
    main()
