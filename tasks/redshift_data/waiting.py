"""Waiting for a statement: long-poll first, back off only when long polling is unavailable.

The original loop slept a fixed 30 s between DescribeStatement calls, so a 1 s statement
was noticed ~29 s late. Long polling (``WaitTimeSeconds``) returns as soon as the statement
ends and otherwise costs one call per 30 s. When an endpoint answers a long poll early
without a final status (it ignores ``WaitTimeSeconds``, or reports a state change), we fall
back to exponential backoff with jitter, reset by the next full-length long poll.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tasks.jobs import (
    STATEMENT_STATES,
    JobError,
    Logger,
    WaitPolicy,
    error_code,
    is_transient,
)
from tasks.redshift_data.cancel import cancel_statement
from tasks.redshift_data.errors import (
    StatementStatusUnknownError,
    StatementTimeoutError,
)
from tasks.redshift_data.status import terminal_error
from tasks.stopping import WorkStoppedError, left_running, raise_if_stopping, stoppable_sleep

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

log = logging.getLogger(__name__)
# A long poll that returns before this share of its wait did not really wait.
_FULL_POLL_SHARE = 0.8

StatusCallback = Callable[[str | None, Mapping[str, Any]], None]


def long_poll_seconds(policy: WaitPolicy, remaining: float | None) -> int | None:
    """``WaitTimeSeconds`` for the next describe, never past the overall deadline."""
    if policy.long_poll_seconds == 0:
        return None
    if remaining is None:
        return policy.long_poll_seconds
    if remaining < 1:
        return None  # the shortest long poll (1 s) would overshoot: ask and sleep instead
    return min(policy.long_poll_seconds, math.floor(remaining))


def waited_fully(requested: int | None, elapsed: float) -> bool:
    return requested is not None and elapsed >= requested * _FULL_POLL_SHARE


def _long_poll_rejected(exc: ClientError) -> bool:
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return error_code(exc) == "ValidationException" and "WaitTimeSeconds" in message


def log_status_change(logger: Logger, label: str) -> StatusCallback:
    def on_change(previous: str | None, description: Mapping[str, Any]) -> None:
        status = description.get("Status")
        if previous is None:
            logger.info("statement %s is %s", label, status)
        else:
            logger.info("statement %s: %s -> %s", label, previous, status)

    return on_change


def wait_for_statement(
    client: RedshiftDataAPIServiceClient,
    statement_id: str,
    *,
    policy: WaitPolicy | None = None,
    sql: str | None = None,
    on_change: StatusCallback | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = stoppable_sleep,
    unit_random: Callable[[], float] = random.random,
) -> Mapping[str, Any]:
    """The FINISHED description, or the error its final status stands for.

    Raises StatementTimeoutError past the policy's timeout (without cancelling: see
    ``wait_or_cancel``) and StatementStatusUnknownError when more transient errors than the
    budget happen in a row.
    """
    policy = policy or WaitPolicy()
    on_change = on_change or log_status_change(log, statement_id)
    deadline = None if policy.timeout_seconds is None else clock() + policy.timeout_seconds
    use_long_poll = policy.long_poll_seconds > 0
    last_status: str | None = None
    errors = early = 0
    while True:
        # Checked on every pass, not only in the pauses: a long poll has none.
        raise_if_stopping(f"stopped waiting for statement {statement_id}")
        remaining = None if deadline is None else deadline - clock()
        if remaining is not None and remaining <= 0:
            raise StatementTimeoutError(
                f"statement still {last_status} after {policy.timeout_seconds:.1f} s",
                statement_id=statement_id,
                status=last_status,
                sql=sql,
            )
        wait = long_poll_seconds(policy, remaining) if use_long_poll else None
        started = clock()
        try:
            if wait is None:
                description: Mapping[str, Any] = client.describe_statement(Id=statement_id)
            else:
                description = client.describe_statement(Id=statement_id, WaitTimeSeconds=wait)
        except ClientError as exc:
            if use_long_poll and _long_poll_rejected(exc):
                log.info("endpoint rejects WaitTimeSeconds; polling with backoff instead")
                use_long_poll = False
                continue
            if not is_transient(exc):
                raise JobError(f"DescribeStatement for {statement_id} failed: {exc}") from exc
            errors = _after_transient(
                policy, statement_id, last_status, errors, exc, sleep, unit_random
            )
            continue
        except Exception as exc:
            if isinstance(exc, BotoCoreError) and not is_transient(exc):
                # Not an answer about the statement (e.g. credentials that could not be
                # fetched): it is not cancelled, and the next run reattaches to it.
                raise JobError(f"DescribeStatement for {statement_id} failed: {exc}") from exc
            if not is_transient(exc):
                raise
            errors = _after_transient(
                policy, statement_id, last_status, errors, exc, sleep, unit_random
            )
            continue
        errors = 0
        status = str(description.get("Status"))
        if status != last_status:
            on_change(last_status, description)
            last_status = status
        if STATEMENT_STATES.outcome(status) == "succeeded":
            return description
        failure = terminal_error(description, sql)
        if failure is not None:
            raise failure
        if waited_fully(wait, clock() - started):
            early = 0
            continue
        delay = policy.delay(early, unit_random())
        early += 1
        if deadline is not None:
            delay = min(delay, max(0.0, deadline - clock()))
        sleep(delay)


def _after_transient(
    policy: WaitPolicy,
    statement_id: str,
    last_status: str | None,
    errors: int,
    exc: Exception,
    sleep: Callable[[float], None],
    unit_random: Callable[[], float],
) -> int:
    errors += 1
    if errors > policy.transient_error_budget:
        raise StatementStatusUnknownError(
            f"gave up polling after {errors} transient errors in a row (last: {exc}); the "
            "statement may still be running and a new attempt will reattach to it",
            statement_id=statement_id,
            status=last_status,
        ) from exc
    log.info(
        "transient error describing %s (%d/%d): %s",
        statement_id,
        errors,
        policy.transient_error_budget,
        exc,
    )
    sleep(policy.delay(errors - 1, unit_random()))
    return errors


def wait_or_cancel(
    client: RedshiftDataAPIServiceClient,
    statement_id: str,
    *,
    policy: WaitPolicy | None = None,
    sql: str | None = None,
    logger: Logger | None = None,
    label: str | None = None,
    **wait_kwargs: Any,
) -> Mapping[str, Any]:
    """``wait_for_statement`` that cancels the statement when the wait is abandoned.

    Abandoned means: our timeout, or anything that unwinds through here that is not the
    statement's own outcome or an error of ours: KeyboardInterrupt, Prefect's
    TerminationSignal (SIGTERM, a runner cancelling the flow), a task timeout. Waits in
    worker threads, which no signal reaches, end with ``WorkStoppedError`` once their flow
    run is being stopped (``tasks.stopping``) and cancel too; the flows' stop path also
    cancels by the flow run's work tags (``flows.hooks.stop_run_work``). When polling
    itself keeps failing we do not cancel: the statement is probably fine and the next
    attempt reattaches.
    """
    logger = logger or log
    try:
        return wait_for_statement(
            client,
            statement_id,
            policy=policy,
            sql=sql,
            on_change=log_status_change(logger, label or statement_id),
            **wait_kwargs,
        )
    except StatementTimeoutError:
        cancel_statement(client, statement_id, reason="wait timed out", logger=logger)
        raise
    except WorkStoppedError:
        # unless the stop path's fence left it for another live run that waits on it too
        if not left_running(statement_id):
            cancel_statement(client, statement_id, reason="flow run stopped", logger=logger)
        raise
    except JobError:
        raise
    except BaseException as exc:
        cancel_statement(
            client, statement_id, reason=f"waiting stopped: {type(exc).__name__}", logger=logger
        )
        raise
