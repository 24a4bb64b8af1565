"""CancelStatement: by id when a wait is abandoned (or before it began), by name when a
flow run is stopped.

Cancelling is best effort by nature (the statement may finish in the meantime), so these
functions never raise: they log what happened and return it, and the caller re-raises its
own reason for stopping. ``cancel_statements_named`` stops a whole night by name, for
callers without a flow run to fence by (the flows stop only their own run's work:
``flows.hooks.stop_run_work``); ``tasks.glue.stop_runs_named`` is its Glue twin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from tasks.jobs import STATEMENT_STATES, Logger, error_code, is_throttling
from tasks.stopping import undone_if_abandoned

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

CancelOutcome = Literal["cancelled", "not-cancelled", "already-ended", "error"]
log = logging.getLogger(__name__)


def cancel_statement(
    client: RedshiftDataAPIServiceClient,
    statement_id: str,
    *,
    reason: str = "",
    logger: Logger | None = None,
) -> CancelOutcome:
    """Ask Redshift to cancel; the outcome is logged and returned, never raised."""
    logger = logger or log
    why = f" ({reason})" if reason else ""
    try:
        response = client.cancel_statement(Id=statement_id)
    except ClientError as exc:
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        if code in ("ValidationException", "ResourceNotFoundException") and not is_throttling(exc):
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


def cancelled_if_abandoned(
    client: RedshiftDataAPIServiceClient, statement_id: Callable[[], str | None], logger: Logger
) -> AbstractContextManager[None]:
    """Around the calls between ExecuteStatement's answer and the wait (the checkpoint
    task's end, tagging the flow run): a task timeout or a signal landing there would leave
    the statement running with nobody waiting on it and no tag for the stop hooks.
    ``statement_id`` says which, when it comes to that (None: nothing was submitted);
    ``wait_or_cancel`` covers the wait itself."""

    def cancel() -> None:
        submitted = statement_id()
        if submitted is not None:
            cancel_statement(
                client, submitted, reason="stopped before waiting on it", logger=logger
            )

    return undone_if_abandoned(cancel)


def cancel_statements_named(
    client: RedshiftDataAPIServiceClient,
    name_prefix: str,
    *,
    where: Mapping[str, str] | None = None,
    reason: str = "",
    logger: Logger | None = None,
) -> dict[str, CancelOutcome]:
    """Cancel every running statement whose StatementName starts with ``name_prefix``, on
    the warehouse ``where`` names (``RedshiftTarget.statement_filter()``; without it, the
    same names on any warehouse the caller's IAM role ran them on).

    For hooks that run in another process than the one that submitted (a Prefect runner
    handling cancellation after killing the flow process): the names are the only state
    they share with it.
    """
    logger = logger or log
    outcomes: dict[str, CancelOutcome] = {}
    try:
        paginator = client.get_paginator("list_statements")
        request: dict[str, Any] = {**(where or {}), "StatementName": name_prefix, "Status": "ALL"}
        for page in paginator.paginate(**request):
            for statement in page.get("Statements", []):
                name = statement.get("StatementName", "")
                if name.startswith(name_prefix) and statement["Status"] in STATEMENT_STATES.running:
                    outcomes[statement["Id"]] = cancel_statement(
                        client, statement["Id"], reason=reason, logger=logger
                    )
    except (ClientError, BotoCoreError) as exc:
        logger.warning("could not list statements named %s* to cancel: %s", name_prefix, exc)
    return outcomes
