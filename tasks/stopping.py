"""A flow run being stopped stops its worker threads' work too, instead of starting more.

A stop (SIGTERM, Ctrl-C, a runner's cancellation, a flow timeout) reaches only a flow's
main thread. Its steps run in worker threads, which would otherwise go on: a step that had
not yet started its Glue run or statement would start it after the stop, wait for it to
end, and keep the dying process alive meanwhile (seen on a SIGTERM'd night: two clean runs
started 4 s after the signal ran 17 s to SUCCEEDED before the process exited). The
flows' one stop path (``flows.hooks.stop_run_work``) calls :func:`request_stop` for its
flow run before it stops the work the run has tagged; the waiting code of tasks/ pauses
with :func:`stoppable_sleep` and checks :func:`raise_if_stopping` before it starts work,
so each worker thread notices the stop within one pause (a statement's wait: within its
long poll, which the stop path's cancel of the tagged statements ends at once), stops the
run or statement it waits on, unless the stop path's fence left it running for another
live run (:func:`left_running`), and ends with ``WorkStoppedError`` (never retried: the
flow run is ending).

Scoped by flow run id (from Prefect's run context), so stopping one run never touches the
threads of another run in the same process. Outside a flow run nothing is ever stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from tasks.flow_run_tags import current_flow_run_id
from tasks.jobs import JobError

_stopping: set[str] = set()
# Per stopped flow run: ids of work its threads must leave running (another live run waits on
# it; the stop path's fence decided so), guarded by _changed.
_left_running: dict[str, frozenset[str]] = {}
_changed = threading.Condition()


class WorkStoppedError(JobError):
    """The flow run is being stopped: its step stopped the work it waited on, or did not
    start it. Not retried (see ``tasks.jobs.safe_to_retry``)."""


def _run_id() -> str | None:
    run_id = current_flow_run_id()
    return None if run_id is None else str(run_id)


def request_stop(flow_run_id: object, leave_running: Iterable[str] = ()) -> None:
    """Stop the work of ``flow_run_id``'s threads at their next pause (None: nothing), but
    for ``leave_running``: ids of work another live run also waits on, which the threads
    leave as the stop path's fence does (``flows.hooks.stop_run_work``)."""
    if flow_run_id is None:
        return
    with _changed:
        _left_running[str(flow_run_id)] = frozenset(leave_running)
        _stopping.add(str(flow_run_id))
        _changed.notify_all()


def clear_stop(flow_run_id: object) -> None:
    """Forget a stop of ``flow_run_id``: a new attempt of that run starts afresh."""
    with _changed:
        _stopping.discard(str(flow_run_id))
        _left_running.pop(str(flow_run_id), None)


def left_running(work_id: str) -> bool:
    """Whether this thread's flow run is being stopped with ``work_id`` left running for
    another live run that waits on it (so its waiting thread must not stop it)."""
    run_id = _run_id()
    with _changed:
        return run_id is not None and work_id in _left_running.get(run_id, frozenset())


def raise_if_stopping(what: str) -> None:
    """Raise ``WorkStoppedError`` naming ``what`` (the work not started) if this thread's
    flow run is being stopped."""
    run_id = _run_id()
    if run_id is not None and run_id in _stopping:
        raise WorkStoppedError(f"flow run {run_id} is being stopped: {what}")


def stoppable_sleep(seconds: float) -> None:
    """``time.sleep`` that ends early with ``WorkStoppedError`` once this thread's flow run
    is being stopped; the default pause of every wait loop in tasks/."""
    run_id = _run_id()
    if run_id is None:
        time.sleep(seconds)
        return
    with _changed:
        if _changed.wait_for(lambda: run_id in _stopping, timeout=max(0.0, seconds)):
            raise WorkStoppedError(f"flow run {run_id} is being stopped")


def abandons_work(exc: BaseException) -> bool:
    """Whether ``exc`` means the caller stopped waiting (Ctrl-C, SIGTERM as Prefect's
    TerminationSignal, the cancel a Prefect task timeout injects into its thread,
    SystemExit) rather than that a call or the work failed. Work started for a caller that
    stopped waiting must not outlive it; after an ordinary error the work goes on, and a
    retry reattaches to it by its run key."""
    return not isinstance(exc, Exception)


@contextmanager
def undone_if_abandoned(undo: Callable[[], object]) -> Iterator[None]:
    """Call ``undo`` (stop the run, cancel the statement) if the block is left by an
    abandonment (``abandons_work``), then let it go on. For the steps between starting
    work and waiting on it (releasing the start lock, the race check, tagging the flow
    run): each is a call to a server, where a task timeout or a signal can land, and the
    wait's own stop-on-abandon is not in force yet."""
    try:
        yield
    except BaseException as exc:
        if abandons_work(exc):
            undo()
        raise
