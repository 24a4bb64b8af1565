"""The Prefect lease the Glue tasks hold around each lookup + StartJobRun (``StartLock``).

Two invocations of one night (a manual run while the scheduled one runs, a retry racing
its twin) both look their run key up; without a lock both may find nothing and both start,
and the after-start check then stops the later run, which on AWS was started and billed.
The lease makes the lookup and the StartJobRun one step: the second invocation looks only
after the first one's StartJobRun was answered, finds that run and attaches to it.

Design, and why:

* One Prefect global concurrency limit per Glue job, ``mystore-glue-start:<job name>``,
  limit 1, created on first use (looked up first, see ``ensure_start_limit``). Per job,
  not per night step: the UI shows one limit per job, and since it is held only for the
  lookup and one StartJobRun (a few hundred ms) and never while waiting (see
  ``starting.py``), the three clean steps of a night, which use the same job with
  different run keys, are not serialized beyond that.
* The lease lasts ``LEASE_SECONDS`` (60 s, the shortest the server accepts). If the holder
  dies while holding it, Prefect's repossessor frees the slot after the lease expires
  (within about 75 s: it looks every 15 s), so a dead process blocks other starts of the
  job for at most that; ``ACQUIRE_TIMEOUT_SECONDS`` waits longer than that.
* A failed lease renewal is logged, not turned into a cancellation: the hold is far
  shorter than the lease, and cancelling mid-StartJobRun would make the start ambiguous.
* No lease, no start: if the Prefect API cannot give the lease (unreachable, timed out,
  the limit deactivated or not limit 1), ``GlueStartLeaseError`` is raised and nothing
  was sent to Glue. It is a ``ReattachableError``, so the task's retry tries again; to
  start without the lease anyway, call ``run_glue_job`` without ``start_lock``.

The lease serializes the processes that share one Prefect API (a server or Prefect
Cloud); flows on Prefect's ephemeral in-process API each have their own.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.sync import concurrency
from prefect.context import TaskRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound, PrefectHTTPStatusError
from prefect.types.names import BANNED_CHARACTERS

from tasks.glue.starting import StartLock
from tasks.jobs import Logger, ReattachableError

log = logging.getLogger(__name__)

LEASE_PREFIX = "mystore-glue-start:"
LEASE_SECONDS = 60.0  # the server refuses shorter leases (lease_duration >= 60)
ACQUIRE_TIMEOUT_SECONDS = 300.0  # > a dead holder's lease plus the repossessor's 15 s
_ENSURE_LOCK = threading.Lock()


class GlueStartLeaseError(ReattachableError):
    """The start lease could not be taken; nothing was sent to Glue, a retry tries again."""


def start_lease_name(job_name: str) -> str:
    """The limit's name for ``job_name``: characters Prefect bans in names (``/ % & > <``)
    become ``_``, with a hash of the real name appended so two jobs never share a limit."""
    safe = "".join("_" if ch in BANNED_CHARACTERS else ch for ch in job_name)
    if safe != job_name:
        safe += "-" + hashlib.sha256(job_name.encode()).hexdigest()[:8]
    return LEASE_PREFIX + safe


def ensure_start_limit(name: str) -> None:
    """Create the limit ``name`` with limit 1 unless it exists; refuse one that exists but
    would not serialize starts (deactivated, or a limit other than 1).

    Read first, one process's callers at a time: every night after the first finds the
    limit with one GET. Creating it every time cost each night about 2 s: the night's
    three clean steps (threads of one flow run) posted three creates at once, which a
    SQLite-backed server answered with a 503 that Prefect's client retries after about
    2 s before the 409. Across processes a lost race is still read through.
    """
    with _ENSURE_LOCK, get_client(sync_client=True) as client:
        try:
            existing = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
                return
            except ObjectAlreadyExists:
                pass
            except PrefectHTTPStatusError as err:
                # Another process created it first: its insert wins, ours fails with a 5xx.
                if err.response.status_code < 500:
                    raise
            existing = client.read_global_concurrency_limit_by_name(name)
    if not existing.active or existing.limit != 1:
        raise GlueStartLeaseError(
            f"Prefect concurrency limit {name!r} is active={existing.active} with limit "
            f"{existing.limit}; it must be active with limit 1 to keep two starts of one "
            "Glue run key apart (fix it in the UI, or delete it and it is created again)"
        )


def _holder() -> ConcurrencyLeaseHolder | None:
    """The task run holding the lease, shown on the limit in the UI."""
    context = TaskRunContext.get()
    return ConcurrencyLeaseHolder(type="task_run", id=context.task_run.id) if context else None


def prefect_start_lock(
    *,
    lease_seconds: float = LEASE_SECONDS,
    timeout_seconds: float = ACQUIRE_TIMEOUT_SECONDS,
    logger: Logger | None = None,
) -> StartLock:
    """A ``StartLock`` that holds a slot of the job's limit (see the module docstring).

    The limit is made sure of once per lock and job; the slot is taken on each hold.
    """
    ensured: set[str] = set()
    say = logger or log

    @contextmanager
    def hold(job_name: str) -> Iterator[None]:
        name = start_lease_name(job_name)
        lease: AbstractContextManager[None] | None = None
        try:
            if name not in ensured:
                ensure_start_limit(name)
                ensured.add(name)
            lease = concurrency(
                name,
                occupy=1,
                timeout_seconds=timeout_seconds,
                lease_duration=lease_seconds,
                strict=True,
                holder=_holder(),
                raise_on_lease_renewal_failure=False,
            )
            lease.__enter__()
        except GlueStartLeaseError:
            raise
        except Exception as err:
            raise GlueStartLeaseError(
                f"Could not take the Prefect lease {name!r} to start Glue job {job_name} "
                f"({type(err).__name__}: {err}); nothing was sent to Glue, a retry tries again"
            ) from err
        try:
            yield
        finally:
            try:
                lease.__exit__(None, None, None)
            except Exception as err:  # the run is started (or not) already: do not fail it
                say.warning(
                    "Could not release the Prefect lease %r (%s); it expires within %.0fs",
                    name, err, lease_seconds,
                )  # fmt: skip

    return hold
