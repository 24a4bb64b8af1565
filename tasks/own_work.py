"""What a flow run itself started, so that no retry of it starts a run key's work twice.

``force`` (``--force-rerun``) means: do not reuse an *earlier run's* work. A retry of a step
inside the same flow run is not an earlier run: its first attempt's Glue run or statement
may still be running (the errors that are retried are a lost poll or an unknown status),
and a forced lookup that skipped it would start a second one: the same night loaded twice
into the same table. Suspend mode's reading pass, which runs a step whose start failed as
poll mode does, is the same case.

So the lookups note, per flow run and run key, which runs or statements of the key already
existed when that flow run first looked. Whatever has the key and was not there then was
started since, by this flow run (or by a concurrent invocation of the same night, whose
fresh work a forced retry then shares instead of doubling it), and is reattached as
``reattach_to`` (a resumed run's own work) is: whatever its state, so a failed one is
reported, never started again; and, being the run's own, it is not "reattached" (the summary
says so only of an earlier run's work) and is stopped when the run gives up waiting on it.

Kept in this process, per Prefect flow run (outside one, per task run; outside both nothing
is noted and the lookups behave as before). A run resumed in another process has its work
from its tags (``reattach_to``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable

_LOCK = threading.Lock()
# (flow or task run, what was looked up): the ids that existed at that run's first look.
_FIRST_LOOK: dict[tuple[str, str], frozenset[str]] = {}


def _current_run() -> str | None:
    """The Prefect flow run this code runs in (also from a task's thread), else the task
    run, else None."""
    if "prefect" not in sys.modules:
        return None  # a process that never imported Prefect is in no Prefect run
    from prefect.context import FlowRunContext, TaskRunContext

    flow_run = FlowRunContext.get()
    if flow_run is not None and flow_run.flow_run is not None:
        return f"flow-run:{flow_run.flow_run.id}"
    task_run = TaskRunContext.get()
    if task_run is not None and task_run.task_run is not None:
        return f"task-run:{task_run.task_run.id}"
    return None


def started_since_first_look(lookup: str, listed: Iterable[str]) -> frozenset[str]:
    """The ids among ``listed`` (what ``lookup`` finds now) that the current run started.

    None on the run's first look at ``lookup``, whose ids are remembered; on a later look,
    those not listed then. Nothing outside a Prefect run.
    """
    run = _current_run()
    ids = frozenset(listed)
    if run is None:
        return frozenset()
    with _LOCK:
        before = _FIRST_LOOK.setdefault((run, lookup), ids)
    return ids - before
