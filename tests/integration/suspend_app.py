"""A small deployed pipeline for the suspend tests (not a test module).

One procedure step, ``rsd_test.<procedure>(tag, seconds)`` (or with ``glue_job``, one
Glue step running that job with ``--sleep seconds``), run by ``flows.runner`` with
``wait_mode``; served as deployment ``suspend-test-night/suspend-test`` by a real Prefect
runner (``--serve``) so the runs can suspend. The nightly flow uses the same runner code.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from prefect import flow

from flows.pipeline import GlueStep, Pipeline, ProcedureStep
from flows.runner import run_pipeline
from flows.runtime import Runtime
from flows.settings import Settings


def one_step_pipeline(
    name: str, procedure: str, tag: str, seconds: float, glue_job: str = ""
) -> Pipeline:
    if glue_job:
        arguments = {"--sleep": str(seconds), "--tag": tag}
        return Pipeline(name=name, steps=(GlueStep("slow", glue_job, arguments),))
    step = ProcedureStep("slow", "rsd_test", procedure, args=(tag, str(seconds)))
    return Pipeline(name=name, steps=(step,))


@flow(name="suspend-test-night")
def night(
    pipeline: str,
    logical_date: str,
    tag: str,
    seconds: float,
    procedure: str = "sp_slow",
    wait_mode: str = "suspend",
    glue_job: str = "",
) -> dict[str, Any]:
    runtime = Runtime.from_settings(Settings())
    summary = run_pipeline(
        one_step_pipeline(pipeline, procedure, tag, seconds, glue_job),
        runtime,
        date.fromisoformat(logical_date),
        force=False,
        wait_mode=wait_mode,  # type: ignore[arg-type]
    )
    return summary.as_dict()


if __name__ == "__main__":
    night.serve(name="suspend-test")
