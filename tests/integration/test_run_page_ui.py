"""The Prefect UI shows a night as its summary says: headless Chromium on a real server's UI.

Runs a small night twice (the second reattaches to the first's statements) against the
session's migrated local stack, on the embedded default's own Prefect server with its UI
(``local.prefect_server``), then opens the second flow run's page in Chromium and checks
the task runs (named after their steps, in state "Reattached") and the Artifacts tab (one
statements artifact, the summary with the same statuses).

Needs Debian's ``chromium`` (``/usr/bin/chromium``) and the ``playwright`` dev dependency,
which drives it without downloading a browser of its own.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.context import get_run_context
from prefect.settings import PREFECT_API_URL, PREFECT_LOCAL_STORAGE_PATH, temporary_settings

from flows.pipeline import CheckStep, Pipeline, ProcedureStep
from flows.runner import run_pipeline
from flows.runtime import Runtime
from flows.settings import Settings
from local.prefect_server import PrefectServer, start_prefect_server
from local.processes import this_process
from local.stack import LocalStack
from tasks.aws import aws_client
from tasks.redshift_data import RedshiftTarget
from tasks.redshift_data.artifact import artifact_key

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("MYSTORE_TEST_CHROMIUM", "/usr/bin/chromium")
NIGHT = date(2026, 10, 30)
FLOW_NAME = "ui-night"
PAGE_TIMEOUT_MS = 60_000


def _chromium_or_skip() -> Any:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(
            f"Chromium not found at {CHROMIUM}: install Debian's packages with "
            "`apt-get install -y --no-install-recommends chromium chromium-driver` "
            "(.ci/run does), or set MYSTORE_TEST_CHROMIUM to a Chromium binary"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: `uv sync --locked` installs the dev group")
    return sync_playwright


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """The embedded default's Prefect server, UI on, owned by this test process."""
    server = start_prefect_server(tmp_path_factory.mktemp("ui-data"), this_process())
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


def _runtime(stack: LocalStack) -> Runtime:
    os.environ.update(stack.client_env())
    target = RedshiftTarget(database="dev", cluster_identifier="local", db_user="awsuser")
    glue = aws_client("glue", endpoint_url=stack.endpoint_url)
    return Runtime.with_clients(Settings(target="local"), target, glue)


def _run_night(pipeline: Pipeline, runtime: Runtime) -> tuple[str, dict[str, Any]]:
    @flow(name=FLOW_NAME)
    def night() -> tuple[str, dict[str, Any]]:
        summary = run_pipeline(pipeline, runtime, NIGHT, force=False).as_dict()
        return str(get_run_context().flow_run.id), summary  # type: ignore[union-attr]

    return night()


def _final_task_run_states(client: Any, flow_run_id: str) -> dict[str, str | None]:
    """The run's task runs by name and state name, once its step task runs are there and
    final: the server records task-run states from events, a moment after the flow returns
    (longer on a loaded machine), so a read right after the run can find none yet."""
    steps = {"load_warehouse", "check: check_nothing_offends"}
    deadline = time.monotonic() + 60
    while True:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(flow_run_id)]))
        )
        final = {t.name for t in runs if t.state is not None and t.state.is_final()}
        if steps <= final or time.monotonic() > deadline:
            return {t.name: t.state_name for t in runs}
        time.sleep(0.5)


def test_the_run_page_shows_steps_statuses_and_one_statements_artifact(
    ui_server: PrefectServer, migrated: LocalStack, tmp_path: Path
) -> None:
    sync_playwright = _chromium_or_skip()
    pipeline = Pipeline(
        f"ui-{uuid.uuid4().hex[:8]}",
        (
            ProcedureStep("load_warehouse", "stg_mystore", "sp_run_incremental_load"),
            CheckStep(
                "check_nothing_offends",
                "no rows",
                "select 1 where false",
                depends_on=("load_warehouse",),
            ),
        ),
    )
    from prefect.events.worker import EventsWorker

    # The process's events worker is one per client type, bound to the API it first met:
    # drain it so this test's task-run events reach the UI server, and again afterwards.
    EventsWorker.drain_all(timeout=30)
    with temporary_settings(
        updates={PREFECT_API_URL: ui_server.api_url, PREFECT_LOCAL_STORAGE_PATH: tmp_path}
    ):
        runtime = _runtime(migrated)
        first_id, first = _run_night(pipeline, runtime)
        run_id, second = _run_night(pipeline, runtime)
        with get_client(sync_client=True) as client:
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(run_id)])
                )
            )
            first_runs, task_runs = (_final_task_run_states(client, i) for i in (first_id, run_id))
        EventsWorker.drain_all(timeout=30)
    assert [s["status"] for s in first["steps"]] == ["succeeded", "succeeded"]
    assert [s["status"] for s in second["steps"]] == ["reattached", "reattached"]
    statements_key = artifact_key(FLOW_NAME)
    assert sorted(str(a.key) for a in artifacts) == sorted(
        [statements_key, f"{pipeline.name}-summary"]
    )
    assert task_runs.get("load_warehouse") == "Reattached"
    assert task_runs.get("check: check_nothing_offends") == "Reattached"
    assert first_runs.get("load_warehouse") == "Completed"
    assert first_runs.get("submit load_warehouse") == "Completed"  # only the first submitted

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(f"{ui_server.ui_url}/runs/flow-run/{run_id}")
            # the page renders its task runs in stages: wait for each, then read it whole
            for text in ("load_warehouse", "check: check_nothing_offends", "Reattached"):
                page.get_by_text(text).first.wait_for()
            body = page.inner_text("body")
            for text in ("load_warehouse", "check: check_nothing_offends", "Reattached"):
                assert text in body, f"{text!r} not on the run page:\n{body[:3000]}"
            page.get_by_text(re.compile(r"^\s*Artifacts\s*$")).first.click()
            page.get_by_text(statements_key).first.wait_for()
            artifacts_text = page.inner_text("body")
            assert artifacts_text.count(statements_key) == 1, artifacts_text[:3000]
            assert f"{pipeline.name}-summary" in artifacts_text
        finally:
            browser.close()
