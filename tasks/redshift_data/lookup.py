"""Finding statements by StatementName: ListStatements, every page, retried like a wait.

A reattach lookup is the first call of every keyed step, so it meets whatever the Data
API throws at a busy night: throttling, a 5xx, a dropped connection. Failing the night on
the fourth ThrottlingException (botocore's own retries spent) would be wrong: nothing was
submitted yet and asking again is free. So each page is asked for until it answers, with
the same backoff and the same budget of transient errors in a row as a statement's wait
(``WaitPolicy.transient_error_budget``, classified by ``tasks.jobs.is_transient``), and a
retried page resumes at its own NextToken instead of starting the listing over.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from tasks.jobs import Logger, WaitPolicy, is_transient
from tasks.redshift_data.errors import StatementLookupError

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

log = logging.getLogger(__name__)


def list_statements_named(
    client: RedshiftDataAPIServiceClient,
    name_prefix: str,
    *,
    where: Mapping[str, str] | None = None,
    policy: WaitPolicy | None = None,
    logger: Logger | None = None,
    sleep: Callable[[float], None] = time.sleep,
    unit_random: Callable[[], float] = random.random,
) -> Iterator[Mapping[str, Any]]:
    """Every statement (all statuses) whose StatementName starts with ``name_prefix``, on
    the warehouse ``where`` names (``RedshiftTarget.statement_filter()``).

    ListStatements returns what the caller's IAM role ran anywhere: without ``where``, a
    night of the same pipeline run on another cluster, workgroup or database by the same
    role would be taken for this warehouse's (and reattached to, loading nothing here).

    Raises ``StatementLookupError`` naming the prefix and the last cause when more
    transient errors than the policy's budget happen in a row, or at once on an error that
    is not transient (a refused request, bad credentials).
    """
    policy = policy or WaitPolicy()
    logger = logger or log
    request: dict[str, Any] = {**(where or {}), "StatementName": name_prefix, "Status": "ALL"}
    errors = 0
    while True:
        try:
            page = client.list_statements(**request)
        except (ClientError, BotoCoreError, ConnectionError) as exc:
            if not is_transient(exc):
                raise StatementLookupError(
                    f"ListStatements for {name_prefix}* was refused: {exc}; nothing was submitted",
                    statement_name=name_prefix,
                ) from exc
            errors += 1
            if errors > policy.transient_error_budget:
                raise StatementLookupError(
                    f"ListStatements for {name_prefix}* failed {errors} times in a row "
                    f"(last: {exc}); nothing was submitted, and a retry looks again",
                    statement_name=name_prefix,
                ) from exc
            delay = policy.delay(errors - 1, unit_random())
            logger.info(
                "transient error listing %s* (%d/%d): %s; retrying in %.2f s",
                name_prefix,
                errors,
                policy.transient_error_budget,
                exc,
                delay,
            )
            sleep(delay)
            continue
        errors = 0
        yield from page.get("Statements", [])
        token = page.get("NextToken")
        if not token:
            return
        request["NextToken"] = token
