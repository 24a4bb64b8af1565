"""Event-driven resume end to end, with no poller running: a real Prefect server with its
automation, a real runner (``serve``), the local Data API endpoint in its own process
knowing the Prefect API (so it honours ``WithEvent``), a procedure that sleeps.

The run suspends; when its statement ends the endpoint runs the bridge
(``flows.resume_events``), the automation resumes the run, and it completes with the
statement executed once. A duplicate event is harmless, and installing the automation
again never makes a second one. A run waiting on a local Glue run (a tiny stand-in job on a
Glue endpoint in this process) is resumed by that run's end the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.resume_events import (
    AUTOMATION_NAME,
    emit_for_statement,
    install_automation,
    post_events,
    work_event,
)
from flows.waiting import Work
from local.endpoint import AwsEndpoint
from local.glue_jobs import JobDefinition, register_glue
from local.work_events import WorkEndEvents
from tests.conftest import PrefectApi, data_api_client, serve_endpoint, throwaway_data_dir
from tests.integration.test_suspend import (
    FAILING,
    Served,
    served,  # the fixture
    start,
    statements,
    suspended,
    wait_for,
)
from tests.tasks.redshift_data.test_data_api_reliability import SETUP, TARGET, executions

pytestmark = pytest.mark.slow
__all__ = ["served"]
TINY_JOB = "tiny-sleep"
STANDIN = Path(__file__).parents[1] / "local" / "glue_jobs" / "standin.py"


@pytest.fixture(scope="module")
def endpoint_process(prefect_api: PrefectApi) -> Iterator[str]:
    """The endpoint in its own process, configured with the test Prefect server's API (the
    ``served`` fixture of test_suspend.py uses this one in this module)."""
    from tasks.redshift_data.submit import execute_and_wait

    with (
        throwaway_data_dir("endpoint-events") as data_dir,
        serve_endpoint(data_dir, env=prefect_api.env()) as (_, url),
    ):
        execute_and_wait(data_api_client(url), TARGET, SETUP)
        execute_and_wait(data_api_client(url), TARGET, FAILING)
        yield url


@pytest.fixture(scope="module")
def glue_endpoint(
    prefect_api: PrefectApi, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Local Glue job runs serving one tiny job (the stand-in script: sleeps, no Spark),
    announcing run ends to the test Prefect server as a stack does (``local/work_events``)."""
    endpoint = AwsEndpoint().start()
    jobs = {TINY_JOB: JobDefinition(TINY_JOB, STANDIN, max_concurrent_runs=5)}
    service = register_glue(
        endpoint, pg_dsn=None, data_dir=tmp_path_factory.mktemp("glue"), jobs=jobs
    )
    events = WorkEndEvents(api_url=lambda: prefect_api.api_url)
    service.backend.events = events
    try:
        yield endpoint.url
    finally:
        service.close()
        endpoint.stop()
        events.close()


@pytest.fixture(scope="module")
def automation(prefect_api: PrefectApi) -> str:
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api=prefect_api.api_url) as client:
        # an earlier test may have installed (or changed) it: the first call may create or
        # update; the second finds the same automation, identical
        _, first = install_automation(client)
        assert install_automation(client) == ("unchanged", first)
        assert len(client.read_automations_by_name(AUTOMATION_NAME)) == 1
    return first


def test_the_statement_end_resumes_the_run_with_no_poller(
    served: Served,
    automation: str,
) -> None:
    from prefect.client.orchestration import SyncPrefectClient

    client = data_api_client(served.endpoint)
    run_id, pipeline, tag = start(served, seconds=6)
    wait_for(served, run_id, suspended)
    (statement,) = statements(client, pipeline)
    run = wait_for(served, run_id, lambda r: not suspended(r), timeout=60)
    assert client.describe_statement(Id=statement["Id"])["Status"] == "FINISHED"
    with SyncPrefectClient(api=served.api.api_url) as api:  # a duplicate, while it resumes
        post_events(api, [work_event(Work("statement", statement["Id"]), "FINISHED", run)])
    run = wait_for(served, run_id, lambda r: r.state.is_final())
    assert run.state.is_completed(), run.state
    assert len(statements(client, pipeline)) == 1
    assert executions(client, tag) == 1
    with SyncPrefectClient(api=served.api.api_url) as api:  # a late event finds nobody
        assert emit_for_statement(statement["Id"], "FINISHED", client=api).resumed_runs == []


def test_a_failed_statement_resumes_the_run_into_its_error(
    served: Served,
    automation: str,
) -> None:
    client = data_api_client(served.endpoint)
    run_id, pipeline, tag = start(served, seconds=3, procedure="sp_slow_fail")
    wait_for(served, run_id, suspended)
    run = wait_for(served, run_id, lambda r: r.state.is_final(), timeout=90)
    assert run.state.is_failed()
    assert f"boom {tag}" in served.log.read_text()
    assert len(statements(client, pipeline)) == 1


def test_the_glue_run_end_resumes_the_run_with_no_poller(
    served: Served,
    automation: str,
) -> None:
    from prefect.client.orchestration import SyncPrefectClient

    run_id, _, _ = start(served, seconds=4, glue_job=TINY_JOB)
    suspended_run = wait_for(served, run_id, suspended)
    (glue_tag,) = [t for t in suspended_run.tags if t.startswith(f"glue-run:{TINY_JOB}:")]
    run = wait_for(served, run_id, lambda r: r.state.is_final(), timeout=90)
    assert run.state.is_completed(), run.state
    with SyncPrefectClient(api=served.api.api_url) as api:
        resumes = [s for s in api.read_flow_run_states(run_id) if s.name == "Resuming"]
    assert len(resumes) == 1, "resumed once, by the Glue run's end"
    assert f"Glue run {TINY_JOB}/{glue_tag.rsplit(':', 1)[1]} SUCCEEDED" in served.log.read_text()
