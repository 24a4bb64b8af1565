"""Submitting: every submit carries a ClientToken, and a known step reattaches first.

``execute_and_wait`` is the plain path without Prefect (a random token makes botocore's
own retries safe); the migration runner and tests use it. ``submit_or_reattach`` is the
idempotent path for run keys: it asks the Data API which attempts of this step exist
(ListStatements by name prefix, all statuses, every page, retried through transient
errors like a wait) and only submits when there is nothing to reattach to.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from tasks.jobs import (
    STATEMENT_STATES,
    JobError,
    Logger,
    RunKey,
    SubmitError,
    WaitPolicy,
    error_code,
    is_throttling,
    is_transient,
)
from tasks.own_work import started_since_first_look
from tasks.redshift_data.errors import StatementLookupError
from tasks.redshift_data.lookup import list_statements_named
from tasks.redshift_data.requests import ExecutionMode, SubmitOperation, build_submit_request
from tasks.redshift_data.status import (
    StatementResult,
    is_capacity_error,
    parse_description,
    terminal_error,
)
from tasks.redshift_data.target import RedshiftTarget
from tasks.redshift_data.waiting import wait_or_cancel
from tasks.stopping import raise_if_stopping, stoppable_sleep

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

# The default pauses between tries of a refused submit (1 s, 2 s, 4 s ... up to 30 s);
# a caller's WaitPolicy sets the first one (``submit_interval``).
SUBMIT_RETRY_POLICY = WaitPolicy().submit_backoff()
_SUBMIT_EXCEPTIONS = ("ExecuteStatementException", "BatchExecuteStatementException")
log = logging.getLogger(__name__)


def submit_statement(
    client: RedshiftDataAPIServiceClient,
    operation: SubmitOperation,
    request: Mapping[str, Any],
    *,
    retries: int = 4,
    logger: Logger | None = None,
    sleep: Callable[[float], None] = stoppable_sleep,
    policy: WaitPolicy | None = None,
) -> str:
    """The statement id. Capacity and throttling refusals are retried with backoff.

    ``retries`` bounds how often; ``policy.submit_backoff()`` how long to pause in between
    (default ``SUBMIT_RETRY_POLICY``).

    Errors whose outcome is unknown (a dropped connection, a 5xx) are retried only when the
    request has a ClientToken, because only then can a retry not start a second statement.
    An ExecuteStatementException that names a statement is answered by describing that
    statement: if it runs or finished it is ours, if it failed we raise its error.
    """
    logger = logger or log
    backoff = policy.submit_backoff() if policy is not None else SUBMIT_RETRY_POLICY
    has_token = "ClientToken" in request
    for retry in range(retries + 1):
        try:
            if operation == "ExecuteStatement":
                return client.execute_statement(**request)["Id"]
            return client.batch_execute_statement(**request)["Id"]
        except ClientError as exc:
            statement_id = exc.response.get("StatementId")
            if error_code(exc) in _SUBMIT_EXCEPTIONS and isinstance(statement_id, str):
                return _adopt_or_raise(client, statement_id, exc, logger)
            retryable = is_capacity_error(exc) or is_throttling(exc)
            if not retryable and is_transient(exc) and not has_token:
                raise SubmitError(
                    f"{operation} outcome unknown and no ClientToken to retry safely: {exc}",
                    code=error_code(exc),
                ) from exc
            if not retryable and not is_transient(exc):
                raise JobError(f"{operation} was refused: {exc}") from exc
            failure: Exception = exc
        except BotoCoreError as exc:
            if not (has_token and is_transient(exc)):
                raise SubmitError(
                    f"{operation} outcome unknown and no ClientToken to retry safely: {exc}"
                ) from exc
            failure = exc
        if retry == retries:
            raise SubmitError(
                f"{operation} still refused after {retries + 1} tries: {failure}",
                code=error_code(failure),
            ) from failure
        delay = backoff.delay(retry, random.random())
        logger.warning("%s refused (%s); retrying in %.1f s", operation, failure, delay)
        sleep(delay)
    raise AssertionError("unreachable")


def _adopt_or_raise(
    client: RedshiftDataAPIServiceClient, statement_id: str, exc: ClientError, logger: Logger
) -> str:
    try:
        description = client.describe_statement(Id=statement_id)
    except (ClientError, BotoCoreError) as describe_exc:
        raise SubmitError(
            f"submit raised {error_code(exc)} for statement {statement_id}, and describing it "
            f"failed ({describe_exc}); not resubmitting blindly"
        ) from exc
    failure = terminal_error(description)
    if failure is not None:
        raise failure from exc
    logger.warning(
        "submit raised %s but statement %s is %s; continuing with it",
        error_code(exc),
        statement_id,
        description.get("Status"),
    )
    return statement_id


def execute_and_wait(
    client: RedshiftDataAPIServiceClient,
    target: RedshiftTarget,
    sql: str | Sequence[str],
    *,
    parameters: Mapping[str, object] | None = None,
    statement_name: str | None = None,
    client_token: str | None = None,
    policy: WaitPolicy | None = None,
    execution_mode: ExecutionMode | None = None,
    logger: Logger | None = None,
) -> StatementResult:
    """Run SQL (a list runs as one BatchExecuteStatement) and wait for FINISHED."""
    operation, request = build_submit_request(
        target,
        sql,
        parameters=parameters,
        statement_name=statement_name,
        client_token=client_token or str(uuid.uuid4()),
        execution_mode=execution_mode,
    )
    statement_id = submit_statement(client, operation, request, logger=logger)
    text = sql if isinstance(sql, str) else "; ".join(sql)
    description = wait_or_cancel(
        client,
        statement_id,
        policy=policy,
        sql=text,
        logger=logger,
        label=statement_name or statement_id,
    )
    return parse_description(description, statement_name)


@dataclass(frozen=True)
class PriorStatement:
    statement_id: str
    attempt: int
    status: str
    created_at: str


@dataclass(frozen=True)
class Decision:
    action: Literal["submit", "reattach"]
    attempt: int
    statement_id: str | None
    reason: str


@dataclass(frozen=True)
class Submission:
    statement_id: str
    statement_name: str
    attempt: int
    reattached: bool


def find_prior_statements(
    client: RedshiftDataAPIServiceClient,
    step: RunKey,
    *,
    where: Mapping[str, str] | None = None,
    policy: WaitPolicy | None = None,
    logger: Logger | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[PriorStatement]:
    """Every earlier attempt of this step that the Data API still knows (24 h), on the
    warehouse ``where`` names (``RedshiftTarget.statement_filter()``).

    Every page, each retried through transient errors within ``policy``'s budget
    (``lookup.list_statements_named``); ``StatementLookupError`` when that is spent.
    """
    found = []
    for statement in list_statements_named(
        client, step.step_prefix, where=where, policy=policy, logger=logger, sleep=sleep
    ):
        attempt = step.attempt_of(statement.get("StatementName"))
        if attempt is not None:
            found.append(
                PriorStatement(
                    statement_id=statement["Id"],
                    attempt=attempt,
                    status=statement["Status"],
                    created_at=str(statement.get("CreatedAt", "")),
                )
            )
    return found


def decide(
    prior: Sequence[PriorStatement], *, force: bool = False, reattach_to: Collection[str] = ()
) -> Decision:
    """Reattach to the latest attempt unless it FAILED / ABORTED, or ``force`` asks anew.

    ``reattach_to`` holds ids of statements this flow run already started (a suspended run
    that resumed); this step's one among them is reattached whatever its status, so a FAILED statement is reported, not
    submitted again, and ``force`` does not start a second attempt on every resume.
    """
    for statement in prior:
        if statement.statement_id in reattach_to:
            return Decision(
                "reattach", statement.attempt, statement.statement_id, "started by this run"
            )
    if not prior:
        return Decision("submit", 1, None, "no earlier attempt")
    latest = max(prior, key=lambda p: (p.attempt, p.created_at))
    outcome = STATEMENT_STATES.outcome(latest.status)
    if outcome == "running":
        if force:
            raise JobError(
                f"attempt {latest.attempt} ({latest.statement_id}) is still {latest.status}; "
                "cancel it before forcing a new run"
            )
        return Decision("reattach", latest.attempt, latest.statement_id, f"still {latest.status}")
    if outcome == "succeeded" and not force:
        return Decision("reattach", latest.attempt, latest.statement_id, "already FINISHED")
    why = "forced" if outcome == "succeeded" else f"attempt {latest.attempt} {latest.status}"
    return Decision("submit", latest.attempt + 1, None, why)


def _latest(prior: Sequence[PriorStatement], ids: Collection[str]) -> list[PriorStatement]:
    """The latest attempt among ``prior`` whose id is in ``ids`` (none when none is)."""
    mine = [p for p in prior if p.statement_id in ids]
    return [max(mine, key=lambda p: (p.attempt, p.created_at))] if mine else []


def _refuse_if_forgotten(
    client: RedshiftDataAPIServiceClient, step: RunKey, unlisted: Collection[str]
) -> None:
    """Refuse to submit when this flow run started statements the Data API has forgotten.

    It keeps statements 24 hours: a run resumed (or retried) later than that cannot find its
    own, and cannot tell whether one of them was this step's. Those still known belong to
    other steps (they were not listed under this step's name); a forgotten one might be this
    step's, which may have loaded already, so nothing is submitted again.
    """
    forgotten = []
    for statement_id in sorted(unlisted):
        try:
            client.describe_statement(Id=statement_id)
        except client.exceptions.ResourceNotFoundException:
            forgotten.append(statement_id)
        except (ClientError, BotoCoreError) as exc:  # unknown: do not guess, ask again later
            message = (
                f"not submitting {step.step_prefix}: could not read {statement_id}, which "
                f"this flow run started, to tell whose it is: {exc}"
            )
            if is_transient(exc):
                raise StatementLookupError(message, statement_name=step.step_prefix) from exc
            raise JobError(message) from exc
    if forgotten:
        raise JobError(
            f"not submitting {step.step_prefix}: this flow run started "
            f"{', '.join(forgotten)}, which the Data API no longer knows (it keeps statements "
            "24 hours), and one may have been this step's. Check the warehouse, then run the "
            "night again (with --force-rerun if this step did not run)"
        )


def submit_or_reattach(
    client: RedshiftDataAPIServiceClient,
    target: RedshiftTarget,
    sql: str | Sequence[str],
    step: RunKey,
    *,
    parameters: Mapping[str, object] | None = None,
    force: bool = False,
    execution_mode: ExecutionMode | None = None,
    logger: Logger | None = None,
    submit: Callable[[RunKey, SubmitOperation, Mapping[str, Any], WaitPolicy | None], str]
    | None = None,
    reattach_to: Collection[str] = (),
    with_event: bool = False,
    policy: WaitPolicy | None = None,
) -> Submission:
    """The statement for this step: an earlier live or finished attempt, or a new one.

    ``submit`` lets the Prefect layer checkpoint the new id (its cache is keyed on the run
    key); it defaults to ``submit_statement``. ``reattach_to``: see ``decide``.
    ``with_event`` submits with ``WithEvent=True``: the Data API then sends EventBridge a
    "Redshift Data Statement Status Change" when the statement ends (suspend mode's wake-up).
    ``policy`` bounds the transient errors the lookup of earlier attempts rides out (its
    budget and backoff, the same as the wait's) and paces a refused submit
    (``submit_interval``); a ``submit`` hook receives it as its fourth argument.
    """
    logger = logger or log
    # Validate everything before the first call to AWS.
    build_submit_request(target, sql, parameters=parameters, execution_mode=execution_mode)
    prior = find_prior_statements(
        client, step, where=target.statement_filter(), policy=policy, logger=logger
    )
    # Started by an earlier try of this task run (a retry, even a forced
    # one, never submits a second attempt while its own may still run): as reattach_to.
    since = started_since_first_look(
        f"statement:{target.scope()}:{step.step_prefix}", (p.statement_id for p in prior)
    )
    own = {*reattach_to, *(p.statement_id for p in _latest(prior, since))}
    decision = decide(prior, force=force, reattach_to=own)
    run = step.with_attempt(decision.attempt)
    if decision.action == "reattach":
        assert decision.statement_id is not None
        logger.info(
            "reattaching to %s (%s): %s",
            run.statement_name,
            decision.statement_id,
            decision.reason,
        )
        # An earlier run's work, unless this flow run submitted it itself (before it
        # suspended, or in an earlier try of this step): what the summary calls reattached.
        earlier = decision.statement_id not in own
        return Submission(decision.statement_id, run.statement_name, run.attempt, earlier)
    _refuse_if_forgotten(client, step, set(reattach_to) - {p.statement_id for p in prior})
    raise_if_stopping(f"not submitting {run.statement_name}")
    operation, request = build_submit_request(
        target,
        sql,
        parameters=parameters,
        statement_name=run.statement_name,
        client_token=run.client_token(target.scope()),
        execution_mode=execution_mode,
        with_event=with_event,
    )
    if submit is None:
        statement_id = submit_statement(client, operation, request, logger=logger, policy=policy)
    else:
        statement_id = submit(run, operation, request, policy)
    logger.info("submitted %s as %s (%s)", run.statement_name, statement_id, decision.reason)
    return Submission(statement_id, run.statement_name, run.attempt, False)
