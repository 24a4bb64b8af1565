"""What a step's earlier tries started, so that a retry never starts a run key's work twice.

``force`` (``--force-rerun``) means: do not reuse an *earlier run's* work. A retry of a step
is not an earlier run: its first try's Glue run or statement may still be running (the
errors that are retried are a lost poll or an unknown status), and a forced lookup that
skipped it would start a second one: the same night loaded twice into the same table.

So the lookups note, per Prefect task run (its retries are the same task run) and run key,
which runs or statements of the key already existed at its first try. Whatever has the key
and was not there then was started since, by an earlier try (or by a concurrent
invocation of the same night, whose fresh work a forced retry then shares instead of
doubling it), and is reattached as ``reattach_to`` (a resumed run's own work) is: whatever
its state, so a failed one is reported, never started again; and, being the run's own, it
is not "reattached" (the summary says so only of an earlier run's work).

Another call with the same key (a new task run) looks afresh, as before: a deliberate
second call after a failure still submits the next attempt. Kept in this process; outside a
task run nothing is noted.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable

_LOCK = threading.Lock()
# (task run, what was looked up): the ids that existed at that task run's first try. A few
# entries per step run; the process (a flow run's, or a test session) ends with them.
_FIRST_LOOK: dict[tuple[str, str], frozenset[str]] = {}


def _current_task_run() -> str | None:
    if "prefect" not in sys.modules:
        return None  # a process that never imported Prefect is in no Prefect run
    from prefect.context import TaskRunContext

    context = TaskRunContext.get()
    if context is None or context.task_run is None:
        return None
    return str(context.task_run.id)


def started_since_first_look(lookup: str, listed: Iterable[str]) -> frozenset[str]:
    """The ids among ``listed`` (what ``lookup`` finds now) that appeared since the current
    task run's first try looked: none on that first look (whose ids are remembered).
    Nothing outside a task run."""
    run = _current_task_run()
    ids = frozenset(listed)
    if run is None:
        return frozenset()
    with _LOCK:
        before = _FIRST_LOOK.setdefault((run, lookup), ids)
    return ids - before
