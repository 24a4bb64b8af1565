"""Flow-level stop hooks: when a run is cancelled or crashes, nothing it started keeps going.

A Prefect runner calls ``on_cancellation`` / ``on_crashed`` hooks in its own process after
stopping the flow's, so in-memory handles are gone: the hook finds the night's statements
by StatementName prefix and its Glue runs by the run key in their Arguments. (Inside a
live run, the tasks themselves already cancel what they wait on; this covers kills.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Any

from prefect.client.schemas.objects import FlowRun
from prefect.flows import Flow, FlowStateHook
from prefect.states import State

from flows.pipeline import GlueStep, Pipeline
from flows.runtime import Runtime, default_logical_date
from flows.settings import Settings
from tasks.glue import stop_runs_named
from tasks.jobs import night_prefix
from tasks.redshift_data.cancel import cancel_statements_named

log = logging.getLogger(__name__)

Hook = FlowStateHook[..., Any]


def stop_night(runtime: Runtime, pipeline: Pipeline, night: date, reason: str) -> None:
    """Cancel the night's running statements and stop its running Glue runs, by name.

    The one stop path: the runner calls it when the flow is stopped (SIGTERM, cancellation,
    Ctrl-C, a flow timeout) and ``stop_hook`` when a runner cancels or loses the run.
    Only this night's work is touched; other nights' statements and runs go on.
    """
    prefix = night_prefix(pipeline.name, night)
    cancel_statements_named(runtime.redshift_data, prefix, reason=reason, logger=log)
    for job_name in sorted({s.job_name for s in pipeline if isinstance(s, GlueStep)}):
        stop_runs_named(runtime.glue, job_name, prefix, logger=log)


def stop_hook(pipeline_for: Callable[[FlowRun], tuple[Pipeline, date]]) -> Hook:
    """A hook that rebuilds the run's pipeline and night from its parameters and stops it."""

    def hook(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
        pipeline, night = pipeline_for(flow_run)
        runtime = Runtime.from_settings(Settings())
        stop_night(runtime, pipeline, night, reason=f"flow run {flow_run.name} is {state.name}")

    return hook


def night_of(flow_run: FlowRun) -> date:
    """The run's logical date: its parameter, else the day before its scheduled start."""
    value = flow_run.parameters.get("logical_date")
    if value:
        return date.fromisoformat(str(value)[:10])
    return default_logical_date(flow_run.expected_start_time)
