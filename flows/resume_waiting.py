"""``resume-waiting``: resume suspended runs whose statements and Glue runs have ended, and
stop the work of runs that ended while suspended.

Nothing of ours runs while the warehouse works: a suspended run holds no process, and this
flow runs for a few seconds on a short interval (prefect.yaml, ``resume-waiting``) or once
from the CLI (``python -m flows.resume_waiting``). Each pass:

1. reads the suspended runs tagged ``mystore-waiting`` (one filtered, paged query);
2. checks their work in batches: one DescribeStatement per distinct statement, one
   GetJobRuns listing per Glue job (GetJobRun only for a run not among its newest);
3. resumes each run whose work has all ended (a run someone else resumed or cancelled
   meanwhile raises NotPausedError, which is harmless);
4. sweeps runs CANCELLED, FAILED or CRASHED that are still tagged waiting (cancelling a
   suspended run runs no flow hooks: there is no process): cancels their running
   statements, stops their running Glue runs, then removes the tag, so it happens once.
   Fenced as the stop hooks are (``flows.hooks.shared_with_live_runs``): work another live
   run also waits on (a retry that reattached to it) is left running; that run's own stop
   path or sweep stops it if it ends the same way.

Resuming too early is harmless (the run looks, then suspends again), and so is resuming
twice; the worst a missed pass costs is one interval of delay.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from prefect import flow, get_run_logger
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound
from prefect.flow_runs import NotPausedError, resume_flow_run
from pydantic import ValidationError

from flows.hooks import shared_with_live_runs
from flows.preflight import PrefectApiError, check_prefect_api
from flows.runtime import Runtime
from flows.settings import Settings
from flows.waiting import WAITING_TAG, Work, work_from_tags
from tasks.glue.runner import list_runs, stop_run
from tasks.jobs import GLUE_RUN_STATES, STATEMENT_STATES, Logger, error_code
from tasks.redshift_data.cancel import cancel_statement

PAGE = 200
ENDED_STATES = (StateType.CANCELLED, StateType.FAILED, StateType.CRASHED)


@dataclass
class PassReport:
    """What one pass did; returned by the flow and printed by the CLI."""

    waiting: int = 0
    resumed: list[str] = field(default_factory=list)
    still_waiting: int = 0
    swept: list[str] = field(default_factory=list)
    cancelled_statements: list[str] = field(default_factory=list)
    stopped_glue_runs: list[str] = field(default_factory=list)
    left_running: list[str] = field(default_factory=list)
    sweep_deferred: list[str] = field(default_factory=list)  # work not read: next pass
    aws_calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_runs(
    client: SyncPrefectClient, types: Sequence[StateType], state_name: str | None = None
) -> list[FlowRun]:
    """Runs in ``types`` (and named ``state_name``) tagged waiting, every page."""
    state = FlowRunFilterState(
        type=FlowRunFilterStateType(any_=list(types)),
        name=FlowRunFilterStateName(any_=[state_name]) if state_name else None,
    )
    flt = FlowRunFilter(state=state, tags=FlowRunFilterTags(all_=[WAITING_TAG]))
    runs: list[FlowRun] = []
    while True:
        page = client.read_flow_runs(flow_run_filter=flt, limit=PAGE, offset=len(runs))
        runs += page
        if len(page) < PAGE:
            return runs


GONE = "(not found)"  # what the service answers for work it no longer knows


class WorkStatus:
    """The status of many pieces of work, asked for in batches and remembered per pass."""

    def __init__(self, runtime: Runtime, logger: Logger) -> None:
        self.runtime = runtime
        self.logger = logger
        self.status: dict[str, str] = {}
        self.calls = 0

    def load(self, work: Iterable[Work]) -> None:
        wanted = {w.id: w for w in work if w.id not in self.status}
        by_job: dict[str, set[str]] = {}
        for item in wanted.values():
            if item.kind == "glue" and item.job_name:
                by_job.setdefault(item.job_name, set()).add(item.id)
            else:
                self._describe(item.id)
        for job, ids in by_job.items():
            self._list_job(job, ids)

    def _describe(self, statement_id: str) -> None:
        self.calls += 1
        try:
            answer = self.runtime.redshift_data.describe_statement(Id=statement_id)
            self.status[statement_id] = str(answer["Status"])
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) == "ResourceNotFoundException":  # forgotten (24 h): not running
                self.status[statement_id] = GONE
                return
            self.logger.warning("could not describe statement %s: %s", statement_id, exc)

    def _list_job(self, job: str, ids: set[str]) -> None:
        try:
            runs = list_runs(self.runtime.glue, job, max_runs=500)
            self.calls += max(1, (len(runs) + 199) // 200)
            for run in runs:
                if run.get("Id") in ids:
                    self.status[str(run["Id"])] = str(run.get("JobRunState", ""))
            for run_id in ids - self.status.keys():  # older than the newest 500
                self.calls += 1
                try:
                    run = self.runtime.glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
                except ClientError as exc:
                    if error_code(exc) != "EntityNotFoundException":
                        raise
                    self.status[run_id] = GONE
                    continue
                self.status[run_id] = str(run.get("JobRunState", ""))
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) == "EntityNotFoundException":  # the job is gone: so are its runs
                self.status.update(dict.fromkeys(ids - self.status.keys(), GONE))
                return
            self.logger.warning("could not read Glue job %s runs: %s", job, exc)

    def ended(self, work: Work) -> bool | None:
        """True/False when known; None when the service did not answer (ask next pass).
        Work the service no longer knows (a statement after 24 h) has ended."""
        status = self.status.get(work.id)
        if status is None:
            return None
        if status == GONE:
            return True
        table = STATEMENT_STATES if work.kind == "statement" else GLUE_RUN_STATES
        return table.outcome(status) != "running"


def remove_waiting_tag(client: SyncPrefectClient, run: FlowRun) -> None:
    client.update_flow_run(run.id, tags=[t for t in run.tags if t != WAITING_TAG])


def resume_ended(
    client: SyncPrefectClient, status: WorkStatus, report: PassReport, logger: Logger
) -> None:
    runs = read_runs(client, [StateType.PAUSED], state_name="Suspended")
    report.waiting = len(runs)
    work = {run.id: work_from_tags(run.tags) for run in runs}
    status.load(w for items in work.values() for w in items)
    for run in runs:
        ended = [status.ended(w) for w in work[run.id]]
        if not ended or not all(e is True for e in ended):
            report.still_waiting += 1
            continue
        try:
            resume_flow_run(run.id)
        except NotPausedError:
            logger.info("run %s was no longer suspended (resumed or cancelled meanwhile)", run.id)
            continue
        except ObjectNotFound:
            continue
        logger.info("resumed %s (%s): its work has ended", run.name, run.id)
        report.resumed.append(str(run.id))


def sweep_ended(
    client: SyncPrefectClient, status: WorkStatus, report: PassReport, logger: Logger
) -> None:
    runs = read_runs(client, ENDED_STATES)
    work = {run.id: work_from_tags(run.tags) for run in runs}
    status.load(w for items in work.values() for w in items)
    runtime = status.runtime
    for run in runs:
        unknown = [w for w in work[run.id] if status.ended(w) is None]
        if unknown:  # the service did not answer: keep the tag, the next pass looks again
            logger.info(
                "run %s ended while suspended; %s not read this pass, sweeping it later",
                run.name,
                ", ".join(map(str, unknown)),
            )
            report.sweep_deferred.append(str(run.id))
            continue
        running = [w for w in work[run.id] if status.ended(w) is False]
        shared = shared_with_live_runs(client, run.id, running)
        for item in running:
            if item.tag in shared:
                logger.warning("leaving %s running: another live run waits on it too", item)
                report.left_running.append(str(item))
                continue
            reason = f"flow run {run.name} is {run.state_name} while suspended"
            status.calls += 1
            if item.kind == "statement":
                cancel_statement(runtime.redshift_data, item.id, reason=reason, logger=logger)
                report.cancelled_statements.append(item.id)
            else:
                assert item.job_name is not None
                stop_run(runtime.glue, item.job_name, item.id, logger)
                report.stopped_glue_runs.append(item.id)
        remove_waiting_tag(client, run)
        report.swept.append(str(run.id))


def one_pass(runtime: Runtime, logger: Logger) -> PassReport:
    """Resume what can go on, then sweep what ended while suspended."""
    report = PassReport()
    status = WorkStatus(runtime, logger)
    with get_client(sync_client=True) as client:
        resume_ended(client, status, report, logger)
        sweep_ended(client, status, report, logger)
    report.aws_calls = status.calls
    return report


@flow(name="resume-waiting", log_prints=False)
def resume_waiting() -> dict[str, Any]:
    """One pass: resume suspended runs whose statements and Glue runs ended; stop the work
    of runs cancelled, failed or crashed while suspended."""
    logger = get_run_logger()
    report = one_pass(Runtime.from_settings(Settings()), logger)
    logger.info(
        "%d suspended, %d resumed, %d still waiting, %d swept",
        report.waiting,
        len(report.resumed),
        report.still_waiting,
        len(report.swept),
    )
    return report.as_dict()


def _refuse_before_starting() -> str | None:
    """Why this command cannot do anything useful here, or None. Without a server the pass
    ran on a temporary Prefect server, which has no suspended runs, and bad settings failed
    inside that pass as a raw validation error."""
    from prefect.settings import PREFECT_API_URL

    from migrations.settings import describe_validation_error

    if not PREFECT_API_URL.value():
        return (
            "PREFECT_API_URL is not set: the resumer works on the Prefect server your "
            "deployments run on (`python -m local up` prints its export line)"
        )
    try:
        Settings()
    except ValidationError as exc:
        return f"invalid settings: {describe_validation_error(exc)}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.resume_waiting",
        description=(
            "One pass of the resumer against PREFECT_API_URL: resume suspended runs whose "
            "work ended; cancel the statements and stop the Glue runs of runs cancelled, "
            "failed or crashed while suspended. Deployed as resume-waiting in prefect.yaml."
        ),
    )
    parser.add_argument(
        "--install-automation",
        action="store_true",
        help=(
            "instead of a pass, create (or update) the Prefect automation that resumes a "
            "suspended run when an event says its statement or Glue run ended "
            "(flows.resume_events); idempotent: never a second automation of that name"
        ),
    )
    args = parser.parse_args(argv)
    refused = _refuse_before_starting()
    if refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    try:
        check_prefect_api(otherwise="")
    except PrefectApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.install_automation:
        from flows.resume_events import AUTOMATION_NAME, install_automation

        what, automation_id = install_automation()
        print(json.dumps({"automation": AUTOMATION_NAME, "id": automation_id, "result": what}))
        return 0
    print(json.dumps(resume_waiting(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
