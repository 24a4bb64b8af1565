"""``WithEvent`` on the embedded default: a statement submitted with it tells Prefect when it
ends, as the real Data API tells EventBridge.

On AWS, EventBridge's rule runs the product's bridge (``flows.resume_events``); here the
endpoint runs the same bridge itself, in a small thread pool, against the Prefect API this
stack knows: the one the user configured (PREFECT_API_URL or the active profile), else the
stack's own local server. With no Prefect API at all the event is dropped with one log
line (nothing could be waiting on it: suspending needs a Prefect server).

The bridge is imported lazily, on the first ``WithEvent`` submit, so an endpoint that never
sees one never imports Prefect; by the time that statement ends the import is done.
Delivery is best effort, as EventBridge's is: a failure is logged, and the ``resume-waiting``
poller is the safety net.
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


class StatementEvents:
    """Runs the product's bridge when a ``WithEvent`` statement ends."""

    def __init__(self, api_url: Callable[[], str | None] = configured_or_none) -> None:
        self.api_url = api_url
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._warned_no_api = False
        # the latest (statement, status, runs told), for tests and debugging
        self.sent: deque[tuple[str, str, list[str]]] = deque(maxlen=100)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(MAX_BRIDGE_THREADS, "statement-events")
                self._pool.submit(_import_bridge)
            return self._pool

    def expect(self) -> None:
        """A ``WithEvent`` statement was submitted: get the bridge ready (imports Prefect)."""
        self._executor()

    def ended(self, statement_id: str, status: str) -> None:
        """Hand the end of ``statement_id`` to the bridge; returns at once."""
        self._executor().submit(self._emit, statement_id, status)

    def _emit(self, statement_id: str, status: str) -> None:
        try:
            url = self.api_url()
            if not url:
                if not self._warned_no_api:
                    self._warned_no_api = True
                    log.info(
                        "WithEvent: no Prefect API configured; statement end events are dropped"
                    )
                return
            from prefect.settings import PREFECT_API_URL, temporary_settings

            from flows.resume_events import emit_for_statement

            with temporary_settings(updates={PREFECT_API_URL: url}):
                emitted = emit_for_statement(statement_id, status)
            self.sent.append((statement_id, status, emitted.resumed_runs))
            log.info(
                "WithEvent: statement %s %s; told %d waiting run(s)",
                statement_id,
                status,
                len(emitted.resumed_runs),
            )
        except Exception:  # best effort, as EventBridge: the poller is the safety net
            log.warning("WithEvent: could not emit the end of %s", statement_id, exc_info=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _import_bridge() -> None:
    try:
        import flows.resume_events  # noqa: F401
    except Exception:
        log.warning("WithEvent: the event bridge could not be imported", exc_info=True)
