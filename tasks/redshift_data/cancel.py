"""CancelStatement, used when whatever waits on a statement stops waiting.

Cancelling is best effort by nature (the statement may finish in the meantime), so these
functions never raise: they log what happened and return it, and the caller re-raises its
own reason for stopping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import BotoCoreError, ClientError

from tasks.redshift_data.logs import LoggerLike, log
from tasks.redshift_data.status import RUNNING_STATUSES

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

CancelOutcome = Literal["cancelled", "not-cancelled", "already-ended", "error"]


def cancel_statement(
    client: RedshiftDataAPIServiceClient,
    statement_id: str,
    *,
    reason: str = "",
    logger: LoggerLike | None = None,
) -> CancelOutcome:
    """Ask Redshift to cancel; the outcome is logged and returned, never raised."""
    logger = logger or log
    why = f" ({reason})" if reason else ""
    try:
        response = client.cancel_statement(Id=statement_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        if code in ("ValidationException", "ResourceNotFoundException") and not any(
            word in message.lower() for word in ("rate exceeded", "throttl")
        ):
            logger.info(
                "statement %s not cancelled%s: it had already ended (%s: %s)",
                statement_id,
                why,
                code,
                message,
            )
            return "already-ended"
        logger.warning("CancelStatement for %s failed%s: %s", statement_id, why, exc)
        return "error"
    except BotoCoreError as exc:
        logger.warning("CancelStatement for %s failed%s: %s", statement_id, why, exc)
        return "error"
    if response.get("Status"):
        logger.warning("cancelled statement %s%s", statement_id, why)
        return "cancelled"
    logger.warning("Redshift declined to cancel statement %s%s", statement_id, why)
    return "not-cancelled"


def cancel_statements_named(
    client: RedshiftDataAPIServiceClient,
    name_prefix: str,
    *,
    reason: str = "",
    logger: LoggerLike | None = None,
) -> dict[str, CancelOutcome]:
    """Cancel every running statement whose StatementName starts with ``name_prefix``.

    For hooks that run in another process than the one that submitted (a Prefect runner
    handling cancellation after killing the flow process): the names are the only state
    they share with it.
    """
    logger = logger or log
    outcomes: dict[str, CancelOutcome] = {}
    try:
        paginator = client.get_paginator("list_statements")
        for page in paginator.paginate(StatementName=name_prefix, Status="ALL"):
            for statement in page.get("Statements", []):
                name = statement.get("StatementName", "")
                if name.startswith(name_prefix) and statement["Status"] in RUNNING_STATUSES:
                    outcomes[statement["Id"]] = cancel_statement(
                        client, statement["Id"], reason=reason, logger=logger
                    )
    except (ClientError, BotoCoreError) as exc:
        logger.warning("could not list statements named %s* to cancel: %s", name_prefix, exc)
    return outcomes


# Statements some thread of this process is waiting on, so that the thread that receives
# a stop (Prefect raises SIGTERM and cancellation in the main thread) can cancel
# statements waited on by task-runner worker threads, which no signal reaches.
_waiting: dict[str, RedshiftDataAPIServiceClient] = {}
_waiting_lock = threading.Lock()


@contextmanager
def waiting_on(client: RedshiftDataAPIServiceClient, statement_id: str) -> Iterator[None]:
    with _waiting_lock:
        _waiting[statement_id] = client
    try:
        yield
    finally:
        with _waiting_lock:
            _waiting.pop(statement_id, None)


def cancel_waited_statements(
    reason: str, logger: LoggerLike | None = None
) -> dict[str, CancelOutcome]:
    """Cancel every statement this process is currently waiting on."""
    with _waiting_lock:
        waiting = list(_waiting.items())
    return {
        statement_id: cancel_statement(client, statement_id, reason=reason, logger=logger)
        for statement_id, client in waiting
    }


@contextmanager
def cancel_statements_on_stop(logger: LoggerLike | None = None) -> Iterator[None]:
    """Wrap a flow body: when it is stopped, cancel the statements its tasks wait on.

    Stopped means a BaseException that is not an ordinary error (Prefect's
    TerminationSignal for SIGTERM and runner cancellation, KeyboardInterrupt, a
    cancellation) or a TimeoutError (a flow timeout). Tasks run by a thread-pool task
    runner never see those: Prefect raises them in the flow's thread and then waits for the
    worker threads, which would wait for their statements. An ordinary failure cancels
    nothing: the statements keep going and the next run reattaches to them.
    """
    try:
        yield
    except BaseException as exc:
        if not isinstance(exc, Exception) or isinstance(exc, TimeoutError):
            cancel_waited_statements(f"flow stopped: {type(exc).__name__}", logger)
        raise
