"""The local Glue job runs announce every run's end, as Glue sends "Glue Job State Change"
to EventBridge: once per run, with its final state, after the state is readable (so a
resumed flow run that looks finds it ended). The bridge's Prefect side is tested end to end
in tests/integration/test_resume_events.py."""

from __future__ import annotations

import threading
import time

from mypy_boto3_glue import GlueClient

from local.glue_jobs import GlueService
from tests.local.glue_jobs.test_service import glue, wait_for  # noqa: F401  (fixture)

ENDED = {"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR"}


class Recorder:
    """What the stack's ``WorkEndEvents`` would get, and the run's state when it got it."""

    def __init__(self, client: GlueClient) -> None:
        self.client = client
        self.expected = 0
        self.ended: list[tuple[str, str, str, str]] = []
        self.lock = threading.Lock()

    def expect(self) -> None:
        with self.lock:
            self.expected += 1

    def glue_run_ended(self, job_name: str, run_id: str, state: str) -> None:
        seen = self.client.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]["JobRunState"]
        with self.lock:
            self.ended.append((job_name, run_id, state, seen))


def test_every_end_is_announced_once_with_its_final_state(
    glue: tuple[GlueClient, GlueService],  # noqa: F811
) -> None:
    client, service = glue
    recorder = Recorder(client)
    service.backend.events = recorder

    def start(**arguments: str) -> str:
        return client.start_job_run(
            JobName="standin", Arguments={f"--{k}": v for k, v in arguments.items()}, Timeout=1
        )["JobRunId"]

    ok, bad, stopped, late = start(), start(fail_with="boom"), start(sleep="30"), start(sleep="30")
    wait_for(client, "standin", stopped, {"RUNNING"})
    client.batch_stop_job_run(JobName="standin", JobRunIds=[stopped])
    expected = {ok: "SUCCEEDED", bad: "FAILED", stopped: "STOPPED", late: "TIMEOUT"}
    for run_id, state in expected.items():  # the fixture's minute is 0.5 s: late times out
        assert wait_for(client, "standin", run_id, ENDED)["JobRunState"] == state
    deadline = time.monotonic() + 5
    while len(recorder.ended) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # room for a wrong second announcement
    assert sorted(recorder.ended) == sorted(
        ("standin", run_id, state, state) for run_id, state in expected.items()
    )
    assert recorder.expected == len(expected)
