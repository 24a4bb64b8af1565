"""The ``suspend`` wait mode: a deployed run holds no process while the warehouse works.

In poll mode the flow process waits for every statement and Glue run of a layer. In
suspend mode the flow starts (or reattaches to) everything the layer can start, records
what it waits on as run tags (``mystore-waiting``, ``redshift-stmt:<id>``,
``glue-run:<job>:<id>``: filterable server side, so ``flows.resume_waiting`` finds them
without reading every run), and suspends with no timeout. Prefect resumes a suspended run
by executing the flow again from the top with the same flow run id: every start reattaches
through its run key (and the ids in the tags, which live on the server, not on this host),
finished layers are read back, and the run continues, fails as poll mode would, or
suspends again.

Facts this relies on (Prefect 3.9.1, measured): suspending needs a deployment and is
refused for subflows (we fall back to polling with one log line); on re-execution a pause
key that already fired returns at once, so the loop below asks again with the next key;
a suspended run that is cancelled runs no hooks (the resumer's sweep stops its work).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext

from flows.runtime import Runtime
from tasks.flow_run_tags import (
    GLUE_TAG,
    STATEMENT_TAG,
    glue_run_tag,
    remember_flow_run_tags,
    statement_tag,
    update_flow_run_tags,
)
from tasks.jobs import GLUE_RUN_STATES, STATEMENT_STATES, Outcome

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

WaitMode = Literal["poll", "suspend"]
WAIT_MODES: tuple[WaitMode, ...] = ("poll", "suspend")
WAITING_TAG = "mystore-waiting"
# Pool types whose every run starts on the same host as the last one.
SINGLE_HOST_POOL_TYPES = frozenset({"process"})


class WaitModeError(ValueError):
    """A wait mode that cannot work as configured; the message says what to change."""


@dataclass(frozen=True)
class Work:
    """One piece of external work a flow run waits on: a statement or a Glue run."""

    kind: Literal["statement", "glue"]
    id: str
    job_name: str | None = None

    @property
    def tag(self) -> str:
        if self.kind == "statement":
            return statement_tag(self.id)
        assert self.job_name is not None
        return glue_run_tag(self.job_name, self.id)

    def __str__(self) -> str:
        if self.kind == "statement":
            return f"statement {self.id}"
        return f"Glue run {self.job_name}/{self.id}"


def work_from_tags(tags: Iterable[str]) -> list[Work]:
    """The work a run's tags name, in tag order; other tags are ignored."""
    found: list[Work] = []
    for tag in tags:
        if tag.startswith(STATEMENT_TAG) and len(tag) > len(STATEMENT_TAG):
            found.append(Work("statement", tag[len(STATEMENT_TAG) :]))
        elif tag.startswith(GLUE_TAG):
            job, _, run_id = tag[len(GLUE_TAG) :].rpartition(":")
            if job and run_id:
                found.append(Work("glue", run_id, job))
    return found


def parse_wait_mode(value: object) -> WaitMode:
    if value not in WAIT_MODES:
        raise WaitModeError(f"wait_mode {value!r} is invalid; allowed: {', '.join(WAIT_MODES)}")
    return value


@dataclass(frozen=True)
class Progress:
    """Where one piece of work stands, as its service reports it."""

    work: Work
    status: str
    outcome: Outcome
    started_at: dt.datetime | None


def statement_progress(client: RedshiftDataAPIServiceClient, work: Work) -> Progress:
    answer = client.describe_statement(Id=work.id)
    status = str(answer["Status"])
    return Progress(work, status, STATEMENT_STATES.outcome(status), answer.get("CreatedAt"))


def glue_progress(client: GlueClient, work: Work) -> Progress:
    assert work.job_name is not None
    run = client.get_job_run(JobName=work.job_name, RunId=work.id)["JobRun"]
    state = str(run.get("JobRunState", ""))
    return Progress(work, state, GLUE_RUN_STATES.outcome(state), run.get("StartedOn"))


def waiting_message(running: Sequence[Progress], now: dt.datetime | None = None) -> str:
    """The Suspended state's message: what the run waits on and since when."""
    now = now or dt.datetime.now(dt.UTC)
    parts = []
    for item in running:
        since = item.started_at.isoformat(timespec="seconds") if item.started_at else "unknown"
        parts.append(f"{item.work} ({item.status} since {since})")
    return f"waiting on {len(running)}: " + "; ".join(parts) + f" (suspended {now:%H:%M:%S} UTC)"


def why_not_suspend() -> str | None:
    """None when this flow run can suspend, else the reason it cannot (it then polls)."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return "not inside a flow run"
    if context.flow_run.parent_task_run_id is not None:
        return "it is a subflow, and Prefect cannot suspend subflows"
    if context.flow_run.deployment_id is None:
        return "it has no deployment (a CLI or local run), and Prefect suspends deployed runs only"
    return None


def storage_is_shared(environ: Mapping[str, str], declared_shared: bool) -> bool:
    """Whether a checkpoint written on one host is read on the next: a result storage block
    (S3, ...) or a local folder the operator declared shared."""
    return bool(environ.get("PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK")) or declared_shared


def refuse_unshared_storage(pool_type: str | None, shared: bool) -> None:
    """Suspend on a pool whose runs may start on another host needs shared result storage;
    without it a resumed run on a fresh container could not read its checkpoints."""
    if pool_type is None or pool_type in SINGLE_HOST_POOL_TYPES or shared:
        return
    raise WaitModeError(
        f"wait_mode 'suspend' on a {pool_type!r} work pool needs shared result storage: set "
        "PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK (e.g. s3-bucket/mystore-checkpoints), or "
        "MYSTORE_SHARED_RESULT_STORAGE=true if PREFECT_LOCAL_STORAGE_PATH is a shared mount; "
        "or use wait_mode 'poll'"
    )


def work_pool_type() -> str | None:
    """The type of the work pool this run came from; None for ``serve()`` runs."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None or not context.flow_run.work_pool_name:
        return None
    with get_client(sync_client=True) as client:
        return str(client.read_work_pool(context.flow_run.work_pool_name).type)


def _current_run() -> FlowRun:
    """This flow run as the engine read it when this execution started: its tags and pause
    keys are what earlier executions left (nothing else writes them meanwhile), so reading
    them here costs no API call."""
    context = FlowRunContext.get()
    assert context is not None and context.flow_run is not None
    return context.flow_run


def _current_run_id() -> Any:
    return _current_run().id


def is_resumed_execution() -> bool:
    """Whether this execution of the flow run follows a suspend (it has pause keys): work
    its first execution did before suspending (checks, preparation) need not be repeated."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return False
    return bool(context.flow_run.empirical_policy.pause_keys)


def run_tags() -> list[str]:
    """This flow run's tags as the engine read them (no call), remembered so the steps that
    reattach to work already tagged record it with no call either."""
    run = _current_run()
    remember_flow_run_tags(run.id, run.tags)
    return list(run.tags)


def set_tags(add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
    """Add and remove tags of this flow run (under the lock the tasks' records share)."""
    update_flow_run_tags(_current_run_id(), add=add, remove=remove)


def suspend_with_message(message: str) -> None:
    """``prefect.flow_runs.suspend_flow_run`` (no timeout) with a state message.

    Raises Prefect's ``Pause`` when the run suspended (the process then exits) and returns
    when this pause key already fired (a re-execution after a resume): the caller checks
    its work again and calls once more, which then uses the next key.
    """
    from prefect._flow_run_suspension import mark_flow_run_suspension_requested
    from prefect.exceptions import Abort, Pause
    from prefect.flow_runs import _observed_flow_pauses
    from prefect.states import Suspended
    from prefect.utilities.engine import propose_state_sync

    context = FlowRunContext.get()
    assert context is not None and context.flow_run is not None
    key = str(_observed_flow_pauses(context))
    get_run_logger().info("Suspending: %s", message)
    with get_client(sync_client=True) as client:
        try:
            state = propose_state_sync(
                client,
                Suspended(timeout_seconds=None, pause_key=key, message=message),
                flow_run_id=context.flow_run.id,
            )
        except Abort as exc:
            raise RuntimeError(f"Flow run cannot be suspended: {exc}") from exc
    if state.is_running():
        return  # this key fired before this execution: ask again with the next one
    if not state.is_paused():
        raise RuntimeError(f"Flow run cannot be suspended; the API answered {state}")
    mark_flow_run_suspension_requested(context.flow_run.id, state)
    raise Pause(state=state)


def resumed_after_seconds() -> float | None:
    """Seconds since this run last suspended, when this execution is a resume; else None."""
    if not is_resumed_execution():
        return None
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(_current_run_id())
    paused = [s.timestamp for s in states if s.is_paused() and s.timestamp is not None]
    if not paused:
        return None
    return (dt.datetime.now(dt.UTC) - max(paused)).total_seconds()


class Suspender:
    """Suspend mode for one execution of one flow run (built by ``Suspender.begin``).

    ``own`` holds every statement and Glue run this flow run started, read from its tags on
    the server: starts and reads reattach to them whatever their state (``own_ids``).
    """

    def __init__(self, runtime: Runtime, tags: Sequence[str]) -> None:
        self.runtime = runtime
        self.tags = list(tags)
        self.own = set(work_from_tags(tags))
        self.execution_started = time.monotonic()

    @classmethod
    def begin(cls, mode: WaitMode, runtime: Runtime) -> Suspender | None:
        """A Suspender when this run suspends; None to poll (with one line saying why)."""
        if parse_wait_mode(mode) == "poll":
            return None
        reason = why_not_suspend()
        if reason is not None:
            get_run_logger().info("wait_mode 'suspend' falls back to polling: %s", reason)
            return None
        slept = resumed_after_seconds()
        if slept is None:  # a resumed run passed this before it first suspended
            shared = storage_is_shared(os.environ, runtime.settings.shared_result_storage)
            refuse_unshared_storage(work_pool_type(), shared)
        else:
            get_run_logger().info("Resumed after %.0f s suspended", slept)
        return cls(runtime, run_tags())

    def own_ids(self, kind: str) -> frozenset[str]:
        """The ids of this run's own work of ``kind`` ("statement" or "glue"): a step's
        ``reattach_to`` names only its own kind of work (a statement step asks the Data API
        about each id the lookup did not list)."""
        return frozenset(w.id for w in self.own if w.kind == kind)

    def progress(self, work: Work) -> Progress:
        if work.kind == "statement":
            return statement_progress(self.runtime.redshift_data, work)
        return glue_progress(self.runtime.glue, work)

    def settle(self, work: Sequence[Work]) -> None:
        """Return once every piece of ``work`` has ended; while any runs, suspend.

        Suspending raises Prefect's ``Pause`` (the process exits; a resume runs the flow
        again from the top). Returning from ``suspend_with_message`` means its pause key had
        already fired in an earlier execution, so look again and suspend with the next key.
        """
        logger = get_run_logger()
        # The waiting tag goes on with the work's tags, in one write, *before* the work is
        # looked at: an end event sent after that look finds this run by both tags (and
        # waits for it to reach Suspended), and one sent before it precedes the look, which
        # then sees the work ended. Runs that never suspend (poll mode) never carry it.
        new = [w.tag for w in work if w.tag not in self.tags]
        if work and WAITING_TAG not in self.tags:
            new.append(WAITING_TAG)
        if new:
            set_tags(add=new)
            self.tags += new
            self.own.update(work)
        while True:
            progress = [self.progress(w) for w in work]
            running = [p for p in progress if p.outcome == "running"]
            if not running:
                break
            suspend_with_message(waiting_message(running))
        if WAITING_TAG in self.tags:
            set_tags(remove=[WAITING_TAG])
            self.tags.remove(WAITING_TAG)
        if progress:
            logger.info("Ended: %s", "; ".join(f"{p.work} {p.status}" for p in progress))
