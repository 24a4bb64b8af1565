"""The embedded default's EventBridge: statements submitted ``WithEvent`` and Glue job runs
tell Prefect when they end, as the real services tell EventBridge.

On AWS, EventBridge's rules ("Redshift Data Statement Status Change", "Glue Job State
Change") run the product's bridge (``flows.resume_events``); here the endpoint runs the
same bridge itself, in a small thread pool, against the Prefect API this stack knows: the
one the user configured (PREFECT_API_URL or the active profile), else the stack's own local
server. With no Prefect API at all the event is dropped with one log line (nothing could be
waiting on it: suspending needs a Prefect server).

Who announces what: the Data API a statement submitted with ``WithEvent`` (its final
status), the Glue job runs every run (SUCCEEDED, FAILED, STOPPED, TIMEOUT, ERROR), as Glue
always sends its state changes. The bridge only tells runs tagged as waiting on that work,
so an end nobody waits on costs one Prefect query.

The bridge is imported lazily, when the first statement ``WithEvent`` or the first Glue run
starts and a Prefect API is known, so an endpoint that never needs it never imports the
bridge; by the time that work ends the import is done. Delivery is best effort, as
EventBridge's is: a failure is logged, and the ``resume-waiting`` poller is the safety net.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

MAX_BRIDGE_THREADS = 4


def configured_or_none() -> str | None:
    from local.prefect_server import configured_api_url

    return configured_api_url()


class WorkEndEvents:
    """Runs the product's bridge when a ``WithEvent`` statement or a Glue run ends."""

    def __init__(self, api_url: Callable[[], str | None] = configured_or_none) -> None:
        self.api_url = api_url
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._warned_no_api = False
        # the latest (work, status, runs told), for tests and debugging
        self.sent: deque[tuple[str, str, list[str]]] = deque(maxlen=100)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(MAX_BRIDGE_THREADS, "work-end-events")
                self._pool.submit(self._import_bridge)
            return self._pool

    def expect(self) -> None:
        """Work that will announce its end started: get the bridge ready (imports Prefect
        in the pool when a Prefect API is known)."""
        self._executor()

    def statement_ended(self, statement_id: str, status: str) -> None:
        """Hand the end of ``statement_id`` to the bridge; returns at once."""
        self._executor().submit(self._emit, "statement", statement_id, status, None)

    def glue_run_ended(self, job_name: str, run_id: str, state: str) -> None:
        """Hand the end of Glue run ``run_id`` of ``job_name`` to the bridge; returns at once."""
        self._executor().submit(self._emit, "glue", run_id, state, job_name)

    def _emit(self, kind: str, work_id: str, status: str, job_name: str | None) -> None:
        what = f"statement {work_id}" if kind == "statement" else f"Glue run {job_name}/{work_id}"
        try:
            url = self.api_url()
            if not url:
                if not self._warned_no_api:
                    self._warned_no_api = True
                    log.info(
                        "No Prefect API configured; end events of statements and Glue "
                        "runs are dropped"
                    )
                return
            from prefect.settings import PREFECT_API_URL, temporary_settings

            from flows.resume_events import emit_for_glue_run, emit_for_statement

            with temporary_settings(updates={PREFECT_API_URL: url}):
                if job_name is None:
                    emitted = emit_for_statement(work_id, status)
                else:
                    emitted = emit_for_glue_run(job_name, work_id, status)
            self.sent.append((what, status, emitted.resumed_runs))
            log.info("%s %s; told %d waiting run(s)", what, status, len(emitted.resumed_runs))
        except Exception as exc:  # best effort, as EventBridge: the poller is the safety net
            # One line: a Prefect server that is down (or restarting) fails every end the
            # same way, and a traceback per run buried the night's own log.
            log.warning("could not emit the end of %s: %s: %s", what, type(exc).__name__, exc)
            log.debug("emit failure", exc_info=True)

    def _import_bridge(self) -> None:
        try:
            if self.api_url():
                import flows.resume_events  # noqa: F401
        except Exception:
            log.warning("the event bridge could not be imported", exc_info=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
