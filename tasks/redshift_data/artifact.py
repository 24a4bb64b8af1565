"""One table artifact per flow run listing its Redshift statements, updated in place.

Prefect versions an artifact key across runs by design (the Artifacts page shows one
collection per key, one version per run), so a new artifact per change would show a run
with one growing snapshot per statement. Instead the first statement of a flow run creates
the run's artifact and every later one updates it by id (``PATCH /artifacts/{id}``, which
adds no version). The id is found again on the server when this process does not know it
(a suspended run resumes in a fresh process), and the rows recorded before are kept.

The key is named after the flow (``redshift-statements-mystore-nightly``), not the run key,
so the informative statements of a run (no run key) land in the same table.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate, ArtifactUpdate
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)
from prefect.context import FlowRunContext

ARTIFACT_KEY = "redshift-statements"
MAX_RUNS_REMEMBERED = 64

_known: dict[tuple[UUID, str], tuple[UUID, list[dict[str, Any]]]] = {}
_lock = threading.Lock()


def artifact_key(flow_name: str) -> str:
    """``redshift-statements-<flow>``: Prefect keys allow lowercase letters, digits, dashes."""
    slug = "".join(c if c.isalnum() else "-" for c in flow_name.lower()).strip("-")
    return f"{ARTIFACT_KEY}-{slug}" if slug else ARTIFACT_KEY


def merge_row(rows: list[dict[str, Any]], row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The table after ``row``: a statement already listed (same id) is replaced in place."""
    merged = [dict(r) for r in rows]
    for index, existing in enumerate(merged):
        if existing.get("id") == row.get("id"):
            merged[index] = dict(row)
            return merged
    return [*merged, dict(row)]


def record_statement(row: Mapping[str, Any]) -> None:
    """Add or update ``row`` in this flow run's statements artifact (no-op outside a flow)."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return  # a task called outside a flow has no run page to show a table on
    flow_run_id = context.flow_run.id
    key = artifact_key(context.flow.name if context.flow else "")
    description = f"Redshift Data API statements of flow run {context.flow_run.name}"
    with _lock, get_client(sync_client=True) as client:
        known = _known.get((flow_run_id, key))
        if known is None:
            found = client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=[key]),
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
                ),
                limit=1,
            )
            if found:
                known = (found[0].id, _rows_of(found[0].data))
        if known is None:
            rows = merge_row([], row)
            created = client.create_artifact(
                ArtifactCreate(
                    key=key,
                    type="table",
                    description=description,
                    flow_run_id=flow_run_id,
                    data=json.dumps(rows, default=str),
                )
            )
            _remember((flow_run_id, key), (created.id, rows))
            return
        artifact_id, rows = known
        rows = merge_row(rows, row)
        client.update_artifact(artifact_id, ArtifactUpdate(data=json.dumps(rows, default=str)))
        _remember((flow_run_id, key), (artifact_id, rows))


def _remember(run_and_key: tuple[UUID, str], value: tuple[UUID, list[dict[str, Any]]]) -> None:
    """Keep the newest runs' artifacts only: a long-lived worker process runs many flows."""
    _known[run_and_key] = value
    while len(_known) > MAX_RUNS_REMEMBERED:
        del _known[next(iter(_known))]


def _rows_of(data: Any) -> list[dict[str, Any]]:
    """The rows an earlier process stored; a table artifact's data is its JSON text."""
    try:
        parsed = json.loads(data) if isinstance(data, str) else data
    except ValueError:
        return []
    return [dict(r) for r in parsed if isinstance(r, dict)] if isinstance(parsed, list) else []
