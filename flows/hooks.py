"""Flow-level stop hooks: when a run is cancelled or crashes, the work *it* waits on stops.

A Prefect runner calls ``on_cancellation`` / ``on_crashed`` hooks in its own process after
stopping the flow's, so in-memory handles are gone. What survives is on the server: every
statement and Glue run a flow run waits on is tagged on that run as soon as its id is
known (``tasks.flow_run_tags``; ``redshift-stmt:<id>``, ``glue-run:<job>:<id>``). The hook
reads its own run's tags and stops that work, fenced by flow-run id: a statement or Glue
run of the same night that another run started is not touched. Work that another *live*
run of the flow also waits on (it reattached to it) is left running too, because that run
still needs it; its own stop path stops it if it ends the same way.

Before this the hook stopped everything of the night by name, which killed the work of a
second live run of the same night. (Inside a live run, the tasks themselves already
cancel what they wait on; this covers kills, cancellation and lost runs.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.flows import Flow, FlowStateHook
from prefect.states import State

from flows.pipeline import Pipeline
from flows.runtime import Runtime, default_logical_date
from flows.settings import Settings
from flows.waiting import Work, glue_progress, statement_progress, work_from_tags
from tasks.glue.runner import stop_run
from tasks.jobs import night_prefix
from tasks.redshift_data.cancel import cancel_statement
from tasks.stopping import request_stop

log = logging.getLogger(__name__)

Hook = FlowStateHook[..., Any]

# A run in one of these states still waits on (or will reattach to) the work it tagged:
# SCHEDULED covers a run awaiting a retry, PAUSED a suspended one. A CANCELLING run is on
# its way out and its own hook runs, so it does not hold work up.
LIVE_STATES = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED]


def shared_with_live_runs(
    client: SyncPrefectClient, flow_run_id: Any, work: Sequence[Work]
) -> set[str]:
    """The tags of ``work`` that a live run other than ``flow_run_id`` also carries: work
    that run still needs (one filtered query; none for no work). The fence of every path
    that stops a run's work: these hooks and the resumer's sweep."""
    if not work:
        return set()
    others = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(not_any_=[flow_run_id]),
            tags=FlowRunFilterTags(any_=[w.tag for w in work]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=LIVE_STATES)),
        )
    )
    shared = {tag for other in others for tag in other.tags}
    return {w.tag for w in work if w.tag in shared}


def work_of_run(flow_run_id: Any) -> tuple[list[Work], set[str]]:
    """The work this flow run's tags name, and the tags of it other live runs also carry."""
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        work = work_from_tags(run.tags)
        return work, shared_with_live_runs(client, run.id, work)


def stop_run_work(runtime: Runtime, flow_run_id: Any, reason: str) -> list[Work]:
    """Stop the running work of one flow run (fenced by its tags); what was asked to stop.

    The one stop path: the runner calls it when the flow is stopped (SIGTERM, cancellation,
    Ctrl-C, a flow timeout) and ``stop_hook`` when a runner cancels or loses the run. Never
    raises: it runs while another error is on its way out. Once it knows the run's work and
    which of it another live run shares, it tells the run's worker threads in this process
    to stop (``tasks.stopping``), leaving that shared work running as it does itself, so
    none starts more work while the tagged work is being stopped.
    """
    if flow_run_id is None:
        log.warning("not stopping anything (%s): not inside a flow run", reason)
        return []
    try:
        work, shared = work_of_run(flow_run_id)
    except Exception as exc:
        request_stop(flow_run_id)
        log.error(
            "could not read which work flow run %s waits on (%s); stopping nothing. Its "
            "statements and Glue runs carry its night's run key if they must be stopped by "
            "hand: %s",
            flow_run_id,
            reason,
            exc,
        )
        return []
    request_stop(flow_run_id, leave_running=[w.id for w in work if w.tag in shared])
    stopped: list[Work] = []
    for item in work:
        if item.tag in shared:
            log.warning("leaving %s running: another live run waits on it too", item)
            continue
        if _stop_if_running(runtime, item, reason):
            stopped.append(item)
    return stopped


def _stop_if_running(runtime: Runtime, work: Work, reason: str) -> bool:
    try:
        if work.kind == "statement":
            progress = statement_progress(runtime.redshift_data, work)
        else:
            progress = glue_progress(runtime.glue, work)
    except (ClientError, BotoCoreError) as exc:
        log.warning("could not read %s to stop it (%s): %s", work, reason, exc)
        return False
    if progress.outcome != "running":
        return False
    if work.kind == "statement":
        cancel_statement(runtime.redshift_data, work.id, reason=reason, logger=log)
    else:
        assert work.job_name is not None
        stop_run(runtime.glue, work.job_name, work.id, log)
    return True


def stop_hook(pipeline_for: Callable[[FlowRun], tuple[Pipeline, date]]) -> Hook:
    """A hook that stops the work of the flow run it is called for (and nothing else)."""

    def hook(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
        pipeline, night = pipeline_for(flow_run)
        runtime = Runtime.from_settings(Settings())
        stopped = stop_run_work(
            runtime, flow_run.id, reason=f"flow run {flow_run.name} is {state.name}"
        )
        log.warning(
            "flow run %s (%s*) is %s: stopped %s",
            flow_run.name,
            night_prefix(pipeline.name, night),
            state.name,
            _listed(stopped),
        )

    return hook


def _listed(work: Sequence[Work]) -> str:
    return ", ".join(str(w) for w in work) or "nothing still running"


def night_of(flow_run: FlowRun) -> date:
    """The run's logical date: its parameter, else the day before its scheduled start."""
    value = flow_run.parameters.get("logical_date")
    if value:
        return date.fromisoformat(str(value)[:10])
    return default_logical_date(flow_run.expected_start_time)
