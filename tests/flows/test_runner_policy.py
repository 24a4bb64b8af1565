"""Step retries come from the pipeline definition and retry only what reattaches."""

from __future__ import annotations

import pytest
from prefect.states import Failed

from flows.pipeline import CheckStep, RetryPolicy, nightly_pipeline
from flows.runner import CheckFailedError, task_options
from tasks.glue import GlueConcurrencyError, GlueJobFailedError, GluePollError
from tasks.jobs import SubmitError, retry_condition
from tasks.redshift_data import StatementAbortedError, StatementFailedError
from tasks.redshift_data.errors import StatementStatusUnknownError


def test_options_follow_the_steps_retry_policy() -> None:
    step = CheckStep(
        "c", "d", "select 1", retry=RetryPolicy(attempts=4, delay_seconds=5, backoff_rate=3)
    )
    options = task_options(step)
    assert options["task_run_name"] == "check: c"
    assert options["retries"] == 3
    assert options["retry_delay_seconds"] == [5, 15, 45]
    assert options["retry_jitter_factor"] == 0.5
    assert options["retry_condition_fn"] is retry_condition  # the tasks' own predicate


def test_the_nightly_load_is_tried_three_times() -> None:
    options = task_options(nightly_pipeline().step("load_warehouse"))
    assert (options["retries"], options["retry_delay_seconds"]) == (2, [10.0, 20.0])


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (SubmitError("ActiveStatementsExceededException"), True),
        (StatementStatusUnknownError("describe kept failing", statement_id="s-1"), True),
        (GluePollError("glue unreachable"), True),
        (GlueConcurrencyError("no free slot"), True),
        (StatementFailedError("boom", statement_id="s-1", status="FAILED"), False),
        (StatementAbortedError("cancelled", statement_id="s-1", status="ABORTED"), False),
        (GlueJobFailedError("raw2clean", "jr_1", "FAILED", "bad data"), False),
        (CheckFailedError("1 offending row"), False),
        (ValueError("bad input"), False),
    ],
)
def test_only_errors_that_reattach_are_retried(error: Exception, retried: bool) -> None:
    assert retry_condition(None, None, Failed(data=error)) is retried  # type: ignore[arg-type]
