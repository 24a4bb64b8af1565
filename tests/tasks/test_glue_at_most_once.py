"""At most once for Glue: StartJobRun is never resent blindly, a lost or 5xx answer is
looked up by run key, two invocations of the same night converge on one run per step, and
a caller that stops waiting right after the start leaves no run behind.

Real boto3 clients (botocore retries on) against the local endpoint, whose fault injection
loses answers after the work was done; the job is the stand-in script (no Spark).
"""

from __future__ import annotations

import multiprocessing
import pickle
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

import tasks.glue.task
from local.endpoint import AwsEndpoint
from tasks.glue import (
    RUN_KEY_ARGUMENT,
    GlueStartAmbiguousError,
    refuse_blind_resend,
    run_glue_job,
)
from tasks.glue.lease import start_lease_name
from tasks.jobs import RunKey, retry_condition
from tests.conftest import PrefectApi
from tests.tasks.conftest import TASK_TIMEOUTS, HangingPrefectApi, timed_out_in_a_flow
from tests.tasks.glue_invocation import invoke
from tests.tasks.test_glue import FAST, NIGHT, glue_client, runs_with_key, wait_state

LEASE_ROUNDS = 5


def test_a_lost_start_response_does_not_leave_two_runs(endpoint: AwsEndpoint) -> None:
    client = glue_client(endpoint.url, max_attempts=3)  # botocore would resend StartJobRun
    endpoint.faults.drop_after("StartJobRun", 1)  # processed, then the connection drops
    result = run_glue_job(
        client, "standin", {"--sleep": "0.5"}, run_key=RunKey("p", NIGHT, "lost"), **FAST
    )
    (run,) = runs_with_key(client, "standin", "p/2026-11-25/lost")  # started exactly once
    assert (result.run_id, result.reattached, result.state) == (run["Id"], True, "SUCCEEDED")


@pytest.mark.parametrize("processed", [True, False], ids=["processed", "not-processed"])
def test_a_5xx_start_is_looked_up_never_resent(endpoint: AwsEndpoint, processed: bool) -> None:
    """A 5xx may hide a started run: look the key up; start again only if nothing is there."""
    client = glue_client(endpoint.url, max_attempts=3)
    endpoint.faults.server_error(
        "StartJobRun", 1, processed=processed, code="InternalServiceException"
    )
    key = RunKey("p", NIGHT, f"five-{processed}")
    result = run_glue_job(client, "standin", {}, run_key=key, **FAST)
    (run,) = runs_with_key(client, "standin", key.glue_argument)
    assert (result.run_id, result.state) == (run["Id"], "SUCCEEDED")
    assert result.reattached is processed  # found by its key, or started by the second try


def test_an_ambiguous_start_is_never_resent_by_the_client(endpoint: AwsEndpoint) -> None:
    """The guard holds for any injected client, whatever its retry settings; it leaves
    throttling to botocore, which may resend what Glue refused."""
    client = refuse_blind_resend(refuse_blind_resend(glue_client(endpoint.url, max_attempts=5)))
    args = {RUN_KEY_ARGUMENT: "p/2026-11-25/guard", "--secret_arg": "do-not-log-me"}
    endpoint.faults.drop_after("StartJobRun", 1)
    with pytest.raises(
        GlueStartAmbiguousError, match=r"Glue job standin \(run key p/2026-11-25/guard\)"
    ) as err:
        client.start_job_run(JobName="standin", Arguments=args)
    assert isinstance(err.value.__cause__, ConnectionClosedError)
    assert "do-not-log-me" not in str(err.value)
    copy = pickle.loads(pickle.dumps(err.value))
    assert (type(copy), str(copy)) == (GlueStartAmbiguousError, str(err.value))
    endpoint.faults.server_error("StartJobRun", 1, processed=True)
    with pytest.raises(GlueStartAmbiguousError, match="answered 500 InternalFailure") as err:
        client.start_job_run(JobName="standin", Arguments=args)
    assert isinstance(err.value.__cause__, ClientError)
    assert len(runs_with_key(client, "standin", "p/2026-11-25/guard")) == 2  # one per call
    endpoint.faults.throttle("StartJobRun", 2)
    started = client.start_job_run(JobName="standin", Arguments=args)
    assert started["ResponseMetadata"]["RetryAttempts"] == 2


def test_a_throttled_lookup_after_a_lost_start_is_retried_not_skipped(
    endpoint: AwsEndpoint,
) -> None:
    """Nothing is sent again until a lookup has answered: throttled lookups wait their turn."""
    client = glue_client(endpoint.url, max_attempts=1)
    key = RunKey("p", NIGHT, "throttled-look")
    endpoint.faults.drop_after("StartJobRun", 1)
    client.meta.events.register(  # the two lookups right after the lost answer are throttled
        "after-call-error.glue.StartJobRun",
        lambda **_: endpoint.faults.throttle("GetJobRuns", 2),
    )
    result = run_glue_job(client, "standin", {}, run_key=key, **FAST)
    (run,) = runs_with_key(client, "standin", key.glue_argument)
    assert (result.run_id, result.reattached) == (run["Id"], True)


def race(endpoint_url: str, step: str, prefect_api_url: str | None = None) -> list[tuple[str, str]]:
    """Two processes run step ``step`` of the same night at the same moment; what each
    reported: (run id, "started" or "reattached"), or ("error", why)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.tasks.glue_invocation"])  # import once, not twice
    ready, results = context.Queue(), context.Queue()
    go = context.Event()
    processes = [
        context.Process(
            target=invoke, args=(endpoint_url, step, ready, go, results, prefect_api_url)
        )
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    try:
        assert [ready.get(timeout=120) for _ in processes] == ["ready", "ready"]
        go.set()  # both start the step now
        return [results.get(timeout=120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


def test_two_invocations_of_a_night_converge_on_one_run(endpoint: AwsEndpoint) -> None:
    """Without a start lock (plain ``run_glue_job``): both report the same run, and that run
    is the key's only one left doing work (a twin started in the race is stopped by the
    after-start check)."""
    reported = race(endpoint.url, "twice")
    assert all(outcome != "error" for _, outcome in reported) and len(reported) == 2, reported
    run_ids = {run_id for run_id, _ in reported}
    runs = runs_with_key(glue_client(endpoint.url), "standin", "p/2026-11-25/twice")
    working = [r for r in runs if r["JobRunState"] != "STOPPED"]
    assert [r["Id"] for r in working] == list(run_ids), runs  # one id, the one left working
    assert working[0]["JobRunState"] == "SUCCEEDED"
    assert len(runs) <= 2  # at most the one twin of the race, and that one stopped


def test_with_the_prefect_lease_two_invocations_start_exactly_one_run(
    endpoint: AwsEndpoint, prefect_api: PrefectApi
) -> None:
    """The Prefect task, in two flow runs at once: the lease makes lookup + StartJobRun one
    step, so the second invocation finds the first one's run; no twin is ever started."""
    client = glue_client(endpoint.url)
    for round_ in range(LEASE_ROUNDS):
        step = f"lease-{round_}"
        reported = race(endpoint.url, step, prefect_api.api_url)
        assert sorted(outcome for _, outcome in reported) == ["reattached", "started"], reported
        runs = runs_with_key(client, "standin", f"p/2026-11-25/{step}")
        assert [r["Id"] for r in runs] == [reported[0][0]] == [reported[1][0]], (round_, runs)
        assert runs[0]["JobRunState"] == "SUCCEEDED"
    with (  # the lease was the test server's
        temporary_settings(updates={PREFECT_API_URL: prefect_api.api_url}),
        get_client(sync_client=True) as prefect,
    ):
        assert prefect.read_global_concurrency_limit_by_name(start_lease_name("standin")).limit == 1


class RecordingLock:
    """A ``StartLock`` that records holds, with the client's calls and sleeps between."""

    def __init__(self) -> None:
        self.held = False
        self.events: list[str] = []

    @contextmanager
    def __call__(self, job_name: str) -> Iterator[None]:
        assert not self.held, "the start lock is taken while already held"
        self.held = True
        self.events.append(f"hold {job_name}")
        try:
            yield
        finally:
            self.held = False
            self.events.append("release")

    def record(self, what: str) -> None:
        self.events.append(f"{what} {'held' if self.held else 'free'}")

    def holds(self) -> list[list[str]]:
        """The events inside each hold."""
        holds: list[list[str]] = []
        for event in self.events:
            if event.startswith("hold "):
                holds.append([])
            elif event != "release" and event.endswith(" held"):
                holds[-1].append(event)
        return holds


@pytest.mark.parametrize("trouble", ["busy", "lost"])
def test_the_start_lock_is_held_around_lookup_and_start_never_while_sleeping(
    endpoint: AwsEndpoint, trouble: str
) -> None:
    """busy: ConcurrentRunsExceeded until a slot frees up; lost: a 5xx StartJobRun that
    started nothing, looked up twice (a backoff between) before it is sent again."""
    client = glue_client(endpoint.url, max_attempts=3)
    lock = RecordingLock()
    client.meta.events.register("before-call.glue", lambda model, **_: lock.record(model.name))
    job = "single"
    if trouble == "busy":
        client.start_job_run(JobName=job, Arguments={"--sleep": "1"})  # takes the one slot
    else:
        endpoint.faults.server_error("StartJobRun", 1, processed=False)
    lock.events.clear()

    def sleep(seconds: float) -> None:
        lock.record("sleep")
        time.sleep(min(seconds, 0.05))

    key = RunKey("p", NIGHT, f"locked-{trouble}")
    result = run_glue_job(client, job, {}, run_key=key, start_lock=lock, sleep=sleep, **FAST)
    assert (result.state, result.reattached) == ("SUCCEEDED", False)
    assert "sleep held" not in lock.events and "GetJobRun held" not in lock.events
    assert "sleep free" in lock.events
    holds = [events for events in lock.holds() if "StartJobRun held" in events]
    assert len(holds) >= 2, lock.events  # the first attempt, and at least one retry
    for events in holds:  # each attempt is looked up first, in the same hold
        assert events[0] == "GetJobRuns held" and events.count("StartJobRun held") == 1, events
    assert not any(e.startswith("StartJobRun free") for e in lock.events)


# -- a caller that stops waiting between StartJobRun and the wait -----------------------------


class Abandoned(BaseException):
    """What reaches the code when its caller stops waiting: Prefect's task-timeout cancel,
    KeyboardInterrupt and TerminationSignal are BaseExceptions too (``abandons_work``)."""


def abandoning_lock(job_name: str) -> Iterator[None]:
    """A start lock whose release (a call to the Prefect API) is where the caller gives up."""
    yield
    raise Abandoned("while releasing the start lock")


@pytest.mark.parametrize("where", ["lock-release", "race-check", "on-start"])
def test_a_caller_that_stops_waiting_right_after_the_start_leaves_no_run_behind(
    endpoint: AwsEndpoint, where: str
) -> None:
    """Between StartJobRun's answer and the wait come more calls to servers (the lease's
    release, the after-start lookup, tagging the flow run): a task timeout or a signal landing
    in one of them stops the run just started, as one landing in the wait does."""
    client = glue_client(endpoint.url)
    key = RunKey("p", NIGHT, f"abandoned-{where}")
    started: list[str] = []

    def lookup_after_the_start_abandons(**_: Any) -> None:
        if started:
            raise Abandoned("during the after-start lookup")

    def abandon(run_id: str) -> None:
        raise Abandoned(f"while tagging the flow run with {run_id}")

    if where == "race-check":
        client.meta.events.register(
            "after-call.glue.StartJobRun", lambda **_: started.append("StartJobRun")
        )
        client.meta.events.register("before-call.glue.GetJobRuns", lookup_after_the_start_abandons)
    with pytest.raises(Abandoned):
        run_glue_job(
            client,
            "standin",
            {"--sleep": "60"},
            run_key=key,
            start_lock=contextmanager(abandoning_lock) if where == "lock-release" else None,
            on_start=abandon if where == "on-start" else None,
            **FAST,
        )
    observer = glue_client(endpoint.url)  # without the hooks that abandon
    (run,) = runs_with_key(observer, "standin", key.glue_argument)
    assert wait_state(observer, "standin", run["Id"], {"STOPPED"}) == "STOPPED"


def test_an_error_right_after_the_start_leaves_the_run_for_a_retry(endpoint: AwsEndpoint) -> None:
    """An ordinary error is not the caller giving up: the run goes on, and the retry
    reattaches to it instead of starting a second one."""
    client = glue_client(endpoint.url)
    key = RunKey("p", NIGHT, "error-after-start")

    def fail(run_id: str) -> None:
        raise RuntimeError(f"could not note {run_id}")

    with pytest.raises(RuntimeError, match="could not note"):
        run_glue_job(client, "standin", {"--sleep": "0.5"}, run_key=key, on_start=fail, **FAST)
    retried = run_glue_job(client, "standin", {"--sleep": "0.5"}, run_key=key, **FAST)
    (run,) = runs_with_key(client, "standin", key.glue_argument)
    assert (retried.run_id, retried.reattached, retried.state) == (run["Id"], True, "SUCCEEDED")


@pytest.mark.parametrize("task_name", ["glue_job_run", "start_glue_job_run"])
def test_a_task_timeout_while_the_flow_run_is_tagged_stops_the_run(
    endpoint: AwsEndpoint,
    prefect_settings: PrefectApi,
    monkeypatch: pytest.MonkeyPatch,
    task_name: str,
) -> None:
    """The Prefect tasks, with a Prefect API that hangs while the flow run is tagged with the
    run: the task's own timeout fires there, and the run is stopped, not left untagged."""
    client = glue_client(endpoint.url)
    hanging = HangingPrefectApi()
    monkeypatch.setattr(tasks.glue.task, "record_work", hanging)
    for seconds in TASK_TIMEOUTS:
        key = RunKey("flow", NIGHT, f"timeout-tagging-{task_name}-{seconds}")
        glue_task = getattr(tasks.glue.task, task_name).with_options(
            timeout_seconds=seconds, retries=0
        )
        reached = hanging.calls
        outcome = timed_out_in_a_flow(
            partial(glue_task, "standin", {"--sleep": "60"}, run_key=key, client=client)
        )
        if hanging.calls > reached and "timed out" in outcome:
            break  # the timeout fired in the hang, the window this test is about
    else:
        pytest.fail(f"no task timeout of {TASK_TIMEOUTS} s fired in the hang: {outcome}")
    (run,) = runs_with_key(client, "standin", key.glue_argument)
    assert wait_state(client, "standin", run["Id"], {"STOPPED"}) == "STOPPED"


@pytest.mark.parametrize("force", [False, True], ids=["plain", "forced"])
def test_a_step_retried_after_a_lost_poll_waits_on_its_own_run(
    endpoint: AwsEndpoint, prefect_settings: PrefectApi, force: bool
) -> None:
    """A retry follows Glue's answers being lost (GluePollError) while the step's run goes
    on; it waits on that run, even with ``force`` (``--force-rerun``), which skips earlier
    runs' work, not the step's own: a second run would load the night into the table twice.
    ``plain`` is the baseline (the retry reattaches to the earlier night's run, as before);
    ``forced`` is what tasks/own_work.py is for."""
    from prefect import flow

    from tasks.glue import GlueRunResult, glue_job_run

    client = glue_client(endpoint.url)
    key = RunKey("retry", NIGHT, f"own-{force}")
    earlier = run_glue_job(client, "standin", {}, run_key=key, **FAST)  # a night done before
    poll = replace(FAST["poll"], transient_error_budget=2)

    def glue_answers_again(task: Any, task_run: Any, state: Any) -> bool:
        endpoint.faults.clear()
        return retry_condition(task, task_run, state)  # the product's: GluePollError retries

    @flow
    def night() -> GlueRunResult:
        endpoint.faults.throttle("GetJobRun", 1000)  # the first attempt loses sight of its run
        return glue_job_run.with_options(
            retries=1, retry_delay_seconds=0, retry_condition_fn=glue_answers_again
        )("standin", {"--sleep": "2"}, run_key=key, force=force, client=client, poll=poll)

    result = night()
    runs = runs_with_key(client, "standin", key.glue_argument)
    if force:
        assert len(runs) == 2, runs  # the earlier night's and one forced run
        assert (result.run_id != earlier.run_id, result.reattached) == (True, False)  # its own
    else:
        assert len(runs) == 1 and result.run_id == earlier.run_id and result.reattached
    assert result.state == "SUCCEEDED"
