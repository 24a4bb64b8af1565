"""How the export's states fail and retry: the error names Step Functions uses, the flow's
retry budgets translated to Retriers, and the error exit every step shares.

Kept apart from the step builders so the budgets the flow and the machine must agree on
(tested by the parity suite) read in one place.
"""

from __future__ import annotations

import dataclasses
import inspect
import math

from deployments.asl import AslBuildError, Branch, Retrier, choice, fail, format_call
from flows.pipeline import GlueStep, Step
from tasks.glue.starting import DEFAULT_CONCURRENCY_WAIT
from tasks.redshift_data.submit import submit_statement
from tasks.redshift_data.waiting import WaitPolicy

# redshift-data models no ThrottlingException: an SDK reports an unmodeled error under the
# service's base exception name (RedshiftData.RedshiftDataException, the throttle's own code
# only in the cause), so the Retry names both. Retrying that generic name is safe: every
# submit carries a ClientToken and describe/cancel are idempotent; an unmodeled error that
# is not transient fails with its own name and cause once the budget is spent.
THROTTLING = (
    "RedshiftData.ActiveStatementsExceededException",
    "RedshiftData.ThrottlingException",
    "RedshiftData.RedshiftDataException",
)
TRANSIENT = ("RedshiftData.InternalServerException",)
# Redshift Serverless answers a throttled call with ValidationException "Rate exceeded" (the
# flow's tasks.jobs.is_throttling reads the message; a Retry can match only the name). Only
# the DescribeStatement poll retries it: it asks about an id this machine got back from
# ExecuteStatement or ListStatements, so it has no other validation failure to hide. A
# submit's ValidationException may be a real refusal (a bad parameter) and is not retried.
SERVERLESS_THROTTLING = "RedshiftData.ValidationException"
GLUE_CAPACITY = ("Glue.ConcurrentRunsExceededException", "Glue.ThrottlingException")
# The flow's submit tries this often per task attempt (submit_statement's own retries).
SUBMIT_TRIES_PER_ATTEMPT = (
    int(inspect.signature(submit_statement).parameters["retries"].default) + 1
)


def submit_retry(step: Step, first_pause_seconds: float | None = None) -> Retrier:
    """The flow's budget for a refused submit: task attempts x submit tries per attempt.

    ``first_pause_seconds`` (``ExportConfig.submit_retry_seconds``) sets the first pause,
    rounded up to the whole seconds ASL allows; by default a tenth of the step's retry
    delay, at least 1 s."""
    policy = step.retry
    if first_pause_seconds is not None:
        interval = max(1, math.ceil(first_pause_seconds))
    else:
        interval = max(1, round(policy.delay_seconds / 10))
    return Retrier(
        errors=THROTTLING + TRANSIENT,  # safe: every submit carries a ClientToken
        interval_seconds=interval,
        max_attempts=max(0, policy.attempts * SUBMIT_TRIES_PER_ATTEMPT - 1),
        backoff_rate=policy.backoff_rate,
        max_delay_seconds=60,
        jitter=policy.jitter,
    )


def poll_retry() -> Retrier:
    """The flow's transient-error budget while waiting (WaitPolicy.transient_error_budget)."""
    return Retrier(
        errors=THROTTLING + TRANSIENT,
        interval_seconds=2,
        max_attempts=WaitPolicy().transient_error_budget,
        backoff_rate=2.0,
        max_delay_seconds=30,
    )


def describe_retry() -> Retrier:
    """``poll_retry`` plus Serverless's throttle (``SERVERLESS_THROTTLING``), in one budget:
    without it, one "Rate exceeded" took the cancel path and cancelled a running load."""
    polling = poll_retry()
    return dataclasses.replace(polling, errors=(*polling.errors, SERVERLESS_THROTTLING))


def glue_capacity_retry(step: GlueStep) -> Retrier:
    """The flow's patience with a Glue job at its MaxConcurrentRuns, as a Retry.

    Each attempt of the flow's step keeps trying StartJobRun for
    ``DEFAULT_CONCURRENCY_WAIT.timeout_seconds`` (pauses from its ``initial_interval``,
    growing by ``multiplier`` up to ``max_interval``) and the step's attempts retry the
    ``GlueConcurrencyError`` that ends it. The Retry takes the same pauses; FULL jitter
    draws each from 0 to its length, so one averages half of it, and MaxAttempts counts as
    many pauses as fill the flow's attempts x timeout on average. The execution's timeout
    adds the longest they can take (``Retrier.longest_wait_seconds``).
    """
    wait = DEFAULT_CONCURRENCY_WAIT
    if wait.timeout_seconds is None:  # the flow would wait for a slot forever; ASL cannot
        raise AslBuildError("DEFAULT_CONCURRENCY_WAIT has no timeout_seconds to translate")
    budget = step.retry.attempts * wait.timeout_seconds
    interval, longest = max(1, round(wait.initial_interval)), max(1, round(wait.max_interval))
    share = 0.5 if step.retry.jitter else 1.0
    pauses, waited = 0, 0.0
    while waited < budget:
        waited += share * min(longest, interval * wait.multiplier**pauses)
        pauses += 1
    return Retrier(GLUE_CAPACITY, interval, pauses, wait.multiplier, longest, step.retry.jitter)


STEP_FAILED = "Pipeline.StepFailed"


def add_error_exit(branch: Branch, step: str) -> None:
    """``<step>: error``: fail with the caught error. Service errors keep their name (e.g.
    ``RedshiftData.ThrottlingException``); a ``States.*`` error cannot be re-raised by a
    Fail state (names with that prefix are reserved), so it becomes ``Pipeline.StepFailed``
    with the original name and cause in the cause."""
    reraise, reserved = f"{step}: service error", f"{step}: step failed"
    branch.add(
        f"{step}: error",
        choice(
            [{"Variable": "$.error.Error", "StringMatches": "States.*", "Next": reserved}],
            reraise,
        ),
    )
    branch.add(reraise, fail(error_path="$.error.Error", cause_path="$.error.Cause"))
    branch.add(
        reserved,
        fail(
            error=STEP_FAILED,
            cause_path=format_call(f"step {step}: {{}}: {{}}", "$.error.Error", "$.error.Cause"),
        ),
    )


__all__ = [
    "GLUE_CAPACITY",
    "SERVERLESS_THROTTLING",
    "STEP_FAILED",
    "THROTTLING",
    "TRANSIENT",
    "add_error_exit",
    "describe_retry",
    "glue_capacity_retry",
    "poll_retry",
    "submit_retry",
]
