"""The work a flow run waits on, written on the run itself as tags, as soon as it is known.

A statement or Glue run outlives the process that started it, and so must the knowledge of
which flow run it belongs to: a runner that cancels or loses a run calls its hooks in
another process, where nothing in memory survives. A tag per piece of work on the flow run
(``redshift-stmt:<id>``, ``glue-run:<job>:<id>``) is on the server, filterable there, and
is what fences the stop hooks: they stop the work their own run's tags name, not every
statement of the night (``flows.hooks``). Suspend mode reads the same tags back to
reattach after a resume (``flows.waiting``).

Tags are read and written whole (Prefect has no "add a tag"; labels merge on the server
but cannot be filtered there), so every write in this process goes through one lock: the
parallel tasks of a layer must not lose each other's. Recording never fails the work: a
failure is logged, and the hook then knows less.

A work tag, once on a run, is never removed (only the ``waiting`` tag of suspend mode is),
so a work tag this process has seen on the server needs no second read and write: a
resumed run reads its tags once (``read_flow_run_tags``) and its steps, reattaching to the
work those tags name, record nothing again. A tag not seen in this process is always
written, read-modify-write, before the work is waited on, as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

STATEMENT_TAG = "redshift-stmt:"
GLUE_TAG = "glue-run:"
_TAGS_LOCK = threading.Lock()
# Work tags this process has seen on the server, per flow run id (guarded by _TAGS_LOCK).
_SEEN_WORK_TAGS: dict[str, set[str]] = {}


def statement_tag(statement_id: str) -> str:
    return f"{STATEMENT_TAG}{statement_id}"


def glue_run_tag(job_name: str, run_id: str) -> str:
    return f"{GLUE_TAG}{job_name}:{run_id}"


def is_work_tag(tag: str) -> bool:
    return tag.startswith((STATEMENT_TAG, GLUE_TAG))


def _remember(flow_run_id: Any, tags: Iterable[str], forget: Iterable[str] = ()) -> None:
    """Note the work tags the server just showed for the run (caller holds _TAGS_LOCK)."""
    seen = _SEEN_WORK_TAGS.setdefault(str(flow_run_id), set())
    seen.update(t for t in tags if is_work_tag(t))
    seen.difference_update(forget)


def current_flow_run_id() -> Any:
    """The id of the flow run this code runs in (also from a task's thread); None outside."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return None
    return context.flow_run.id


def update_flow_run_tags(
    flow_run_id: Any, add: Iterable[str] = (), remove: Iterable[str] = ()
) -> list[str]:
    """Add and remove tags of a flow run under this process's lock; its tags afterwards."""
    from prefect.client.orchestration import get_client

    with _TAGS_LOCK, get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        drop = set(remove)
        tags = [t for t in run.tags if t not in drop]
        tags += [t for t in add if t not in tags]
        if tags != list(run.tags):
            client.update_flow_run(run.id, tags=tags)
        _remember(flow_run_id, tags, forget=drop)
        return tags


def read_flow_run_tags(flow_run_id: Any) -> list[str]:
    """A flow run's tags, read from the server (its work tags are remembered)."""
    from prefect.client.orchestration import get_client

    with _TAGS_LOCK, get_client(sync_client=True) as client:
        tags = list(client.read_flow_run(flow_run_id).tags)
        _remember(flow_run_id, tags)
        return tags


def remember_flow_run_tags(flow_run_id: Any, tags: Iterable[str]) -> None:
    """Note tags the caller already read for the run (e.g. the engine's flow run at start)."""
    with _TAGS_LOCK:
        _remember(flow_run_id, tags)


def record_work(*tags: str) -> None:
    """Tag the current flow run with work it waits on; nothing outside a flow run, and no
    call for a work tag this process has already seen on the run."""
    flow_run_id = current_flow_run_id()
    if flow_run_id is None:
        return
    with _TAGS_LOCK:
        seen = _SEEN_WORK_TAGS.get(str(flow_run_id), set())
        missing = [t for t in tags if t not in seen]
    if not missing:
        return
    try:
        update_flow_run_tags(flow_run_id, add=missing)
    except Exception as exc:  # the work goes on; only the stop hooks' fence knows less
        log.warning("could not record %s on flow run %s: %s", ", ".join(tags), flow_run_id, exc)
