"""The local stack in one object: embedded PostgreSQL plus the AWS endpoint serving it,
and optionally the local Prefect server.

Flows, tests and the CLI start the same stack; clients reach it only through the standard
``AWS_ENDPOINT_URL_*`` variables (``client_env``) or an explicit ``endpoint_url``.

A stack that serves Glue job runs owns its data dir (``local.lease``): it takes the lease
before anything recovers runs of earlier stacks, so a second stack on a data dir in use
refuses (``StackInUseError``) instead of marking the live stack's runs orphaned. A Data-API
only stack (``with_glue=False``) is a peer: its statements carry their owner, and only
statements of a dead owner are aborted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from local.endpoint import AwsEndpoint
from local.keeper import Keeper, PrefectKeeper, WarehouseKeeper
from local.lease import DEFAULT_DATA_DIR, KEEPER_EXTRA, StackLease
from local.prefect_server import (
    START_TIMEOUT_SECONDS,
    PrefectServer,
    running_server,
    start_prefect_server,
)
from local.processes import start_time, this_process
from local.redshift_data import RedshiftDataBackend, serve_redshift_data
from local.redshift_data.executor import DEFAULT_PAGE_ROWS
from local.warehouse import Warehouse, start_warehouse
from local.warehouse.postgres import server_down_reason

log = logging.getLogger(__name__)
KEEPER_LINES_KEPT = 6

LOCAL_REGION = "us-east-1"
DUMMY_ACCESS_KEY_ID = "AKIDLOCAL"
DUMMY_SECRET_ACCESS_KEY = "local-dummy-secret"  # not a secret: the local endpoint ignores it


class LocalStack:
    """A running warehouse and endpoint; ``stop`` (or leaving the ``with``) tears both down."""

    def __init__(
        self,
        data_dir: Path,
        warehouse: Warehouse,
        endpoint: AwsEndpoint,
        data_api: RedshiftDataBackend,
        lease: StackLease | None = None,
        prefect: PrefectServer | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.lease = lease
        self.prefect = prefect
        self.warehouse = warehouse
        self.endpoint = endpoint
        self.data_api = data_api
        self.pg_dsn = warehouse.dsn
        self._stopped = False
        self._closers: list[Callable[[], None]] = []
        self._keepers: list[Keeper[Any]] = []
        self._keeper_said_lock = threading.Lock()
        self._warehouse_down_reason: WarehouseDownReason | None = None
        self.glue: Any = None  # the local Glue service (``local.glue_jobs``), when served

    @property
    def endpoint_url(self) -> str:
        return self.endpoint.url

    @classmethod
    def start(
        cls,
        data_dir: Path | None = None,
        port: int = 0,
        *,
        max_active_statements: int = 200,
        page_rows: int = DEFAULT_PAGE_ROWS,
        with_glue: bool = True,
        with_prefect: bool = False,
        kind: str = "library",
        log_file: Path | None = None,
        keep_prefect: bool = False,
    ) -> LocalStack:
        """Start (or attach to) PostgreSQL under ``data_dir`` and serve the endpoint on ``port``.

        ``port=0`` picks a free port. Statements left unfinished by an endpoint process
        that died are marked ABORTED here. ``with_glue`` also serves the local Glue job runs
        (``local.glue_jobs``) on the same endpoint, and takes the data dir's lease first
        (``kind`` says who holds it: ``up``, ``serve``, ``nightly``). ``with_prefect`` reuses
        the data dir's Prefect server a standalone night left running, else starts one in
        the background (``wait_ready`` waits for it): one that stops with this stack, or,
        with ``keep_prefect``, one that keeps running for the next run (``local down``
        stops it).
        """
        data_dir = (data_dir if data_dir is not None else DEFAULT_DATA_DIR).expanduser().resolve()
        lease = StackLease.acquire(data_dir, kind, log_file=log_file) if with_glue else None
        prefect = None
        if with_prefect:
            # Only a lease holder gets here with Glue; without it (tests) the same rule holds.
            prefect = running_server(data_dir) or start_prefect_server(
                data_dir, None if keep_prefect else this_process()
            )
        try:
            stack = cls._start_services(data_dir, port, max_active_statements, page_rows, with_glue)
        except BaseException:
            if prefect is not None:
                prefect.stop()
            if lease is not None:
                lease.release()
            raise
        stack.lease, stack.prefect = lease, prefect
        if prefect is not None:  # no configured Prefect API: end events go to the stack's own
            stack.data_api.events.api_url = lambda: prefect.api_url
        if lease is not None:
            lease.publish(endpoint_url=stack.endpoint_url, ready=prefect is None)
        return stack

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Wait for the Prefect server (if this stack runs one), then tell attachers the
        stack is ready, and from then on start the warehouse or the Prefect server again if
        it dies (``local.keeper``). Raises ``PrefectStartError`` saying where its log is."""
        if self.prefect is not None:
            self.prefect.wait_healthy(timeout)
        if not self._keepers and not self._stopped:
            warehouse = WarehouseKeeper(
                self.data_dir, self.warehouse, self._warehouse_restarted, on_said=self._keeper_said
            )
            self._keepers.append(warehouse)
            if self._warehouse_down_reason is not None:
                self._warehouse_down_reason.keeper = warehouse
            if self.prefect is not None:
                self._keepers.append(
                    PrefectKeeper(
                        self.data_dir,
                        self.prefect,
                        self._prefect_restarted,
                        on_said=self._keeper_said,
                    )
                )
        if self.lease is not None:
            changes: dict[str, object] = {"ready": True}
            if self.prefect is not None:
                changes.update(self._prefect_record(self.prefect))
            self.lease.publish(**changes)

    def _keeper_said(self, message: str) -> None:
        """Publish the keepers' last lines (``KEEPER_LINES_KEPT``, timed) for ``local status``:
        a stack up for days shows there that a server was started again, and why."""
        if self.lease is None or self._stopped:  # a stopped stack's state file is gone
            return
        said = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        with self._keeper_said_lock:
            lines = [*self.lease.info.extra.get(KEEPER_EXTRA, []), said][-KEEPER_LINES_KEPT:]
            self.lease.publish(extra={**self.lease.info.extra, KEEPER_EXTRA: lines})

    def _warehouse_restarted(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse  # the same socket, so the endpoint's DSNs stay right

    def _prefect_restarted(self, server: PrefectServer) -> None:
        self.prefect = server
        if self.lease is not None:
            self.lease.publish(**self._prefect_record(server))

    @staticmethod
    def _prefect_record(server: PrefectServer) -> dict[str, object]:
        return {
            "prefect_api_url": server.api_url,
            "prefect_pid": server.pid,
            "prefect_started": server.started or start_time(server.pid),
        }

    def prewarm_spark(self) -> bool:
        """Start the clean job's warm Spark driver now, without waiting for it, so that it
        comes up while the night prepares (sample data, migrations, Prefect). Call it once
        the environment the runs will see is set: the driver is keyed by it."""
        if self.glue is None:
            return False
        return bool(
            self.glue.prewarm(
                "raw2clean", {"--table": "store_sale", "--logical_date": "2000-01-01"}
            )
        )

    @classmethod
    def _start_services(
        cls,
        data_dir: Path,
        port: int,
        max_active_statements: int,
        page_rows: int,
        with_glue: bool,
    ) -> LocalStack:
        warehouse = start_warehouse(data_dir)
        down_reason = WarehouseDownReason(warehouse.pgdata)
        try:
            endpoint = AwsEndpoint(port=port)
        except OSError as exc:
            warehouse.stop()
            raise OSError(f"Could not listen on 127.0.0.1:{port}: {exc}") from exc
        try:
            data_api = serve_redshift_data(
                endpoint,
                warehouse.dsn_for,
                database_dsn=warehouse.dsn,
                max_active_statements=max_active_statements,
                page_rows=page_rows,
                warehouse_down_reason=down_reason,
            )
        except Exception:
            endpoint.stop()
            warehouse.stop()
            raise
        data_api.executor.server_log = warehouse.log
        closers: list[Callable[[], None]] = []
        glue: Any = None
        if with_glue:
            try:
                glue = _register_glue(endpoint, warehouse.dsn, data_dir)
                if glue is not None:  # Glue runs announce their ends as statements do
                    glue.backend.events = data_api.events
                if glue is not None:
                    closers.append(glue.close)
            except Exception:
                endpoint.stop()
                data_api.close()
                warehouse.stop()
                raise
        endpoint.start()
        log.info("Local stack up: endpoint %s, data in %s", endpoint.url, data_dir)
        stack = cls(data_dir, warehouse, endpoint, data_api)
        stack._warehouse_down_reason = down_reason
        stack._closers = closers
        stack.glue = glue
        return stack

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for keeper in self._keepers:  # first: a server stopped on purpose stays stopped
            keeper.close()
        try:
            self.endpoint.stop()
            for close in self._closers:
                close()
            self.data_api.close()
            self.warehouse.stop()
        finally:
            if self.prefect is not None:
                self.prefect.stop()
            if self.lease is not None:
                self.lease.release()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def client_env(self) -> dict[str, str]:
        """Environment for boto3 clients to reach this stack (dummy keys only if none are set)."""
        return client_env(self.endpoint_url)


class WarehouseDownReason:
    """Why the stack's warehouse is down for good (``server_down_reason``): None while it
    runs, and while the stack's keeper watches it, since a dead server is then started
    again within seconds and the endpoint's callers wait for it as for a crash restart."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.keeper: WarehouseKeeper | None = None

    def __call__(self) -> str | None:
        if self.keeper is not None and self.keeper.watching():
            return None
        return server_down_reason(self.pgdata)


def _register_glue(endpoint: AwsEndpoint, pg_dsn: str, data_dir: Path) -> Any:
    """Serve Glue job runs too when that service is part of this checkout; the service."""
    try:
        from local.glue_jobs import register_glue
    except ImportError:
        log.info("local.glue_jobs is not available; serving the Data API only")
        return None
    service = register_glue(endpoint, pg_dsn=pg_dsn, data_dir=data_dir)
    # The local Glue Data Catalog on the same AWSGlue target; it also points the clean job's
    # Hudi sync at this endpoint and drives the Spectrum stand-in (local/glue_catalog).
    from local.glue_catalog import attach_glue_catalog

    attach_glue_catalog(endpoint, data_dir=data_dir, glue_service=service, pg_dsn=pg_dsn)
    return service


def client_env(endpoint_url: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables that point standard AWS clients at ``endpoint_url``."""
    current = dict(os.environ) if environ is None else environ
    env = {
        "AWS_ENDPOINT_URL_REDSHIFT_DATA": endpoint_url,
        "AWS_ENDPOINT_URL_GLUE": endpoint_url,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
    }
    if not current.get("AWS_ACCESS_KEY_ID") and not current.get("AWS_PROFILE"):
        env["AWS_ACCESS_KEY_ID"] = DUMMY_ACCESS_KEY_ID
        env["AWS_SECRET_ACCESS_KEY"] = DUMMY_SECRET_ACCESS_KEY
    return env
