"""``WithEvent`` on the local endpoint: a statement submitted with it announces its end
(final status) to the event bridge; one without does not. The bridge's Prefect side is
tested end to end in tests/integration/test_resume_events.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.stack import LocalStack
from local.work_events import WorkEndEvents

TARGET: dict[str, Any] = {"WorkgroupName": "local-workgroup", "Database": "dev"}


@pytest.fixture
def announced(local_stack: LocalStack) -> Iterator[list[tuple[str, str]]]:
    """What the executor hands the bridge, recorded at its seam (``on_event``)."""
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def record(statement_id: str, status: str) -> None:
        with lock:
            seen.append((statement_id, status))

    executor = local_stack.data_api.executor
    original, executor.on_event = executor.on_event, record
    try:
        yield seen
    finally:
        executor.on_event = original


def _wait_for(seen: list[tuple[str, str]], count: int) -> None:
    deadline = time.monotonic() + 10
    while len(seen) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_only_with_event_statements_announce_their_final_status(
    redshift_data: RedshiftDataAPIServiceClient, announced: list[tuple[str, str]]
) -> None:
    quiet = redshift_data.execute_statement(Sql="select 1", WaitTimeSeconds=10, **TARGET)
    ok = redshift_data.execute_statement(
        Sql="select pg_sleep(0.2)", WithEvent=True, WaitTimeSeconds=10, **TARGET
    )
    bad = redshift_data.execute_statement(
        Sql="select * from no_such_table_x", WithEvent=True, WaitTimeSeconds=10, **TARGET
    )
    _wait_for(announced, 2)
    time.sleep(0.3)  # room for a wrong third announcement
    assert sorted(announced) == sorted([(ok["Id"], "FINISHED"), (bad["Id"], "FAILED")])
    assert all(statement != quiet["Id"] for statement, _ in announced)


def test_without_a_prefect_api_the_event_is_dropped_quietly() -> None:
    events = WorkEndEvents(api_url=lambda: None)
    try:
        events.statement_ended("00000000-0000-0000-0000-000000000000", "FINISHED")
        events.glue_run_ended("raw2clean", "jr_0", "SUCCEEDED")
        deadline = time.monotonic() + 5
        while not events._warned_no_api and time.monotonic() < deadline:
            time.sleep(0.05)
        assert events._warned_no_api
        assert list(events.sent) == []
    finally:
        events.close()
