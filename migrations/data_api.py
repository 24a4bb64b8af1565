"""The Data API calls a migration run makes, on the tasks' plain (non-Prefect) layer.

A migration statement is submitted once with a fresh ClientToken (botocore's own retries
reuse it, so a dropped connection never runs it twice) and awaited with the same waiting,
cancel-on-interrupt and error classes as the nightly's statements (``tasks.redshift_data``).
It needs none of the run-key machinery that makes a nightly step reattach across runs: a
deterministic token would make a retried, unchanged migration replay its earlier FAILED
statement for hours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tasks.redshift_data import RedshiftTarget
from tasks.redshift_data.results import get_rows
from tasks.redshift_data.submit import execute_and_wait

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient


def execute(
    client: RedshiftDataAPIServiceClient,
    target: RedshiftTarget,
    sql: str | Sequence[str],
    parameters: Mapping[str, object] | None = None,
    *,
    name: str,
) -> str:
    """Run one statement (or a list as one BatchExecuteStatement, one transaction), wait for
    it and return its id. FAILED and ABORTED raise ``tasks.redshift_data.StatementError``
    subclasses carrying the database's message; Ctrl-C cancels the statement."""
    return execute_and_wait(
        client, target, sql, parameters=parameters, statement_name=name
    ).statement_id


def fetch_rows(client: RedshiftDataAPIServiceClient, statement_id: str) -> list[dict[str, Any]]:
    """Every row of a finished statement as a dict (typed values; NULL is None)."""
    return get_rows(client, statement_id)
