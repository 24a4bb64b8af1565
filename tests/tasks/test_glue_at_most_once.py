"""At most once for Glue: StartJobRun is never resent blindly, a lost or 5xx answer is
looked up by run key, and two invocations of the same night converge on one run per step.

Real boto3 clients (botocore retries on) against the local endpoint, whose fault injection
loses answers after the work was done; the job is the stand-in script (no Spark).
"""

from __future__ import annotations

import multiprocessing
import pickle

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from local.endpoint import AwsEndpoint
from tasks.glue import (
    RUN_KEY_ARGUMENT,
    GlueStartAmbiguousError,
    refuse_blind_resend,
    run_glue_job,
)
from tasks.jobs import RunKey
from tests.tasks.glue_invocation import invoke
from tests.tasks.test_glue import FAST, NIGHT, glue_client, runs_with_key


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


def test_two_invocations_of_a_night_converge_on_one_run(endpoint: AwsEndpoint) -> None:
    """Two processes run the same step at the same moment: both report the same run, and
    that run is the key's only one left doing work (a twin started in the race is stopped
    by the after-start check)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.tasks.glue_invocation"])  # import once, not twice
    ready, results = context.Queue(), context.Queue()
    go = context.Event()
    processes = [
        context.Process(target=invoke, args=(endpoint.url, "twice", ready, go, results))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    try:
        assert [ready.get(timeout=60) for _ in processes] == ["ready", "ready"]
        go.set()  # both call run_glue_job now
        reported = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    assert all(outcome != "error" for _, outcome in reported) and len(reported) == 2, reported
    run_ids = {run_id for run_id, _ in reported}
    runs = runs_with_key(glue_client(endpoint.url), "standin", "p/2026-11-25/twice")
    working = [r for r in runs if r["JobRunState"] != "STOPPED"]
    assert [r["Id"] for r in working] == list(run_ids), runs  # one id, the one left working
    assert working[0]["JobRunState"] == "SUCCEEDED"
    assert len(runs) <= 2  # at most the one twin of the race, and that one stopped
