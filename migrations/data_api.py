"""The few Redshift Data API calls a migration run makes: run SQL and wait, read rows.

Why not ``tasks.redshift_data``: migrations sit beside the tasks, not on top of them (see
"Allowed import directions" in docs/architecture.md), run outside Prefect, and need none of
the run-key machinery that makes a nightly step reattach across runs. A migration call
submits once with a fresh ClientToken (botocore's own retries reuse it, so a dropped
connection never runs a statement twice) and waits for that statement; a deterministic
token would make a retried, unchanged migration replay its earlier FAILED statement.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from migrations.planning import MigrationError

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

LONG_POLL_SECONDS = 20
_TERMINAL = frozenset({"FINISHED", "FAILED", "ABORTED"})
_MAX_BACKOFF_SECONDS = 5.0


class DataApiTarget(Protocol):
    """Where statements run: anything that names its ExecuteStatement connection fields.

    ``tasks.redshift_data.RedshiftTarget`` fits, and so does ``WarehouseTarget`` below.
    """

    def request_fields(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class WarehouseTarget:
    """A cluster (with a database user or secret) or a Serverless workgroup, and a database.

    The settings that build it (``migrations.settings``) have already checked the
    combination; this only renders the request fields.
    """

    database: str
    cluster_identifier: str | None = None
    workgroup_name: str | None = None
    db_user: str | None = None
    secret_arn: str | None = None

    def request_fields(self) -> dict[str, str]:
        given = {
            "Database": self.database,
            "ClusterIdentifier": self.cluster_identifier,
            "WorkgroupName": self.workgroup_name,
            "DbUser": self.db_user,
            "SecretArn": self.secret_arn,
        }
        return {key: value for key, value in given.items() if value is not None}


class StatementFailedError(MigrationError):
    """A statement ended FAILED or ABORTED; the message carries Redshift's error text."""

    def __init__(self, message: str, statement_id: str | None = None) -> None:
        super().__init__(message)
        self.statement_id = statement_id

    def __reduce__(self) -> tuple[Any, ...]:  # picklable with its statement id
        return (type(self), (str(self), self.statement_id))


def _parameters(parameters: Mapping[str, object]) -> list[dict[str, str]]:
    """Data API ``Parameters``: every value travels as text (the SQL casts it)."""
    return [
        {"name": name, "value": str(value).lower() if isinstance(value, bool) else str(value)}
        for name, value in parameters.items()
    ]


def execute(
    client: RedshiftDataAPIServiceClient,
    target: DataApiTarget,
    sql: str | Sequence[str],
    parameters: Mapping[str, object] | None = None,
    *,
    name: str,
) -> str:
    """Run one statement (or a list as one BatchExecuteStatement, one transaction), wait for
    it and return its id; FAILED or ABORTED raise StatementFailedError. Ctrl-C cancels it."""
    request: dict[str, Any] = {
        **target.request_fields(),
        "StatementName": name,
        "ClientToken": str(uuid.uuid4()),
    }
    if isinstance(sql, str):
        if parameters:
            request["Parameters"] = _parameters(parameters)
        statement_id = client.execute_statement(Sql=sql, **request)["Id"]
    else:
        if parameters:
            raise MigrationError("a batch of statements takes no parameters")
        statement_id = client.batch_execute_statement(Sqls=list(sql), **request)["Id"]
    try:
        description = wait(client, statement_id)
    except KeyboardInterrupt:
        _cancel_quietly(client, statement_id)
        raise
    status = description["Status"]
    if status != "FINISHED":
        error = description.get("Error") or "no error text"
        raise StatementFailedError(f"statement {statement_id} {status}: {error}", statement_id)
    return statement_id


def wait(client: RedshiftDataAPIServiceClient, statement_id: str) -> Mapping[str, Any]:
    """Describe until the statement ends: long polls (``WaitTimeSeconds``) where the endpoint
    supports them, short polls with a growing pause where it does not."""
    long_poll: int | None = LONG_POLL_SECONDS
    pause = 0.05
    while True:
        started = time.monotonic()
        try:
            if long_poll is None:
                description: Mapping[str, Any] = client.describe_statement(Id=statement_id)
            else:
                description = client.describe_statement(Id=statement_id, WaitTimeSeconds=long_poll)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if long_poll is None or "WaitTimeSeconds" not in str(error.get("Message", "")):
                raise
            long_poll = None  # this endpoint has no long polling
            continue
        if description["Status"] in _TERMINAL:
            return description
        if long_poll is None or time.monotonic() - started < long_poll / 2:
            time.sleep(pause)  # answered early without an end: do not spin
            pause = min(pause * 2, _MAX_BACKOFF_SECONDS)


def _cancel_quietly(client: RedshiftDataAPIServiceClient, statement_id: str) -> None:
    # It may have ended meanwhile; the interrupt is what the user sees.
    with contextlib.suppress(ClientError, BotoCoreError):
        client.cancel_statement(Id=statement_id)


def fetch_rows(client: RedshiftDataAPIServiceClient, statement_id: str) -> list[dict[str, Any]]:
    """Every row of a finished statement as a dict (numbers, booleans and text; NULL is
    None): all the migration runner reads is counts, names, checksums and flags."""
    rows: list[dict[str, Any]] = []
    names: list[str] = []  # ColumnMetadata comes with the first page only
    for page in client.get_paginator("get_statement_result").paginate(Id=statement_id):
        names = [column["name"] for column in page.get("ColumnMetadata", [])] or names
        for record in page["Records"]:
            rows.append(dict(zip(names, (_value(field) for field in record), strict=True)))
    return rows


def _value(field: Mapping[str, Any]) -> Any:
    if field.get("isNull"):
        return None
    for key in ("longValue", "booleanValue", "doubleValue", "stringValue"):
        if key in field:
            return field[key]
    raise MigrationError(f"unexpected Data API field {sorted(field)!r}")
