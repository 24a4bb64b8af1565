"""Project-wide fixtures: one local stack (embedded PostgreSQL + AWS endpoint) per session,
the warehouse migrated on it, and one real Prefect server per session.

Fixture names are a contract other test packages rely on: ``local_stack``,
``redshift_data``, ``pg_conn``, ``migrated``, ``prefect_api``, ``prefect_settings`` and
``warm_spark_drivers``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psutil
import psycopg
import pytest
from botocore.config import Config
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.embedded import LOCAL_TARGET
from local.prefect_database import DATABASE_FILE, database_url
from local.stack import LOCAL_REGION, LocalStack
from local.warehouse.dialect import LOCAL_MIGRATION_PARAMETERS
from local.warehouse.redshift_compat import preflight
from migrations import migrate
from tests.sql.staging import RESET, Warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_ACCESS_KEY = "AKIDLOCALTEST"
TEST_SECRET_KEY = "local-test-secret"  # the local endpoint ignores secrets
# Prefect's client retries 503s and dropped connections with 2**n s back-off: 8 tries ride
# out about four minutes of a busy SQLite server on a loaded machine (the default 5, one).
CLIENT_RETRIES = 8
SERVER_LOG_NAME = "prefect-server.log"  # each session Prefect server's log, under basetemp


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int) -> None:
    """When tests failed, the session Prefect servers' errors: a 503 or a reset connection in
    a failure is the server's story, and its log lives in a temp dir CI does not keep.

    The logs are found under pytest's base temp dir, which the xdist workers' temp dirs
    are inside: one server per worker, each quoted under its own heading."""
    factory = getattr(terminalreporter.config, "_tmp_path_factory", None)
    if exitstatus == 0 or factory is None:
        return
    for log_path in sorted(factory.getbasetemp().glob(f"**/{SERVER_LOG_NAME}")):
        lines = log_path.read_text(errors="replace").splitlines()
        errors = [i for i, line in enumerate(lines) if "ERROR" in line or "Traceback" in line]
        if not errors:
            continue
        terminalreporter.section(
            f"Prefect server log {log_path} (errors, last 60 lines around them)"
        )
        shown: list[str] = []
        for i in errors[-6:]:
            shown.extend(lines[i : i + 10])
        terminalreporter.write_line("\n".join(shown[-60:]))


# Fixtures that start a Spark JVM: a test that uses one is a Spark test without saying so.
SPARK_FIXTURES = frozenset({"spark", "warm_spark_drivers"})


def pytest_itemcollected(item: pytest.Item) -> None:
    """Spark tests (marked ``spark``, or using a Spark fixture) get the ``spark`` mark and
    one xdist group: under ``-n 3 --dist loadgroup`` they run one after another on one
    worker, so their JVMs do not fight over a 2-core machine, while the other workers take
    the rest of the suite (where only short-lived drivers of stacks start: README). Marked
    as each item is collected: pytest-xdist reads the groups in its own
    ``pytest_collection_modifyitems``, which runs before a conftest's."""
    if item.get_closest_marker("spark") is None:
        if SPARK_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
            return
        item.add_marker(pytest.mark.spark)
    item.add_marker(pytest.mark.xdist_group("spark"))


def data_api_client(
    endpoint_url: str, access_key: str = TEST_ACCESS_KEY, *, max_attempts: int = 3
) -> RedshiftDataAPIServiceClient:
    """A real boto3 Data API client for the local endpoint, signing as ``access_key``.

    ``max_attempts`` counts every attempt (botocore's ``total_max_attempts``): 1 = no retry.
    """
    return boto3.client(
        "redshift-data",
        endpoint_url=endpoint_url,
        region_name=LOCAL_REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=TEST_SECRET_KEY,
        config=Config(
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            read_timeout=60,
            connect_timeout=5,
        ),
    )


@contextmanager
def small_tmpfs(path: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of ``megabytes`` mounted on the new folder ``path``, to fill up (a full disk);
    unmounted afterwards. Skips the test where mounting is not allowed (it needs root)."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"needs a {megabytes} MB tmpfs to fill (mount -t tmpfs, as root): {mounted.stderr}"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextmanager
def throwaway_data_dir(prefix: str) -> Iterator[Path]:
    """A data dir outside pytest's tmp tree, removed afterwards.

    pytest resets ``/tmp/pytest-of-<user>`` to mode 0700 whenever a session starts, which
    locks the ``pgserver`` OS user (PostgreSQL runs as it under root) out of a data dir
    there while another pytest session runs.
    """
    path = Path(tempfile.mkdtemp(prefix=f"mystore-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def wait_for_flow_run(
    api_url: str,
    run_id: Any,
    done: Callable[[Any], bool],
    timeout: float,
    log: Path,
    *,
    between: Callable[[Any, Any], None] | None = None,
    interval: float = 0.3,
) -> Any:
    """Read the flow run from ``api_url`` until ``done(run)``, and return it; past
    ``timeout`` s, fail with its state and the tail of ``log`` (the runner's or worker's).
    ``between(client, run)`` runs after each read that is not done (a test's stand-in for a
    schedule, such as starting the poller)."""
    from prefect.client.orchestration import SyncPrefectClient

    deadline = time.monotonic() + timeout
    with SyncPrefectClient(api=api_url) as client:
        while True:
            run = client.read_flow_run(run_id)
            if run.state is not None and done(run):
                return run
            if between is not None:
                between(client, run)
            if time.monotonic() > deadline:
                pytest.fail(f"flow run is {run.state}:\n{log.read_text()[-6000:]}")
            time.sleep(interval)


def child_commands(pid: int) -> dict[int, str]:
    """The live descendants of process ``pid``: their command lines by pid, read in one
    listing. Python's multiprocessing resource tracker (a runner or worker starts it on
    first use) and processes that ended meanwhile (zombies too: they hold nothing) are left
    out. What a test asks when it checks that no flow-run process holds a suspended run."""
    found: dict[int, str] = {}
    for process in psutil.Process(pid).children(recursive=True):
        try:
            command = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if "resource_tracker" not in command:
            found[process.pid] = command
    return found


def stop_process_group(process: subprocess.Popen[Any], grace_seconds: float = 30) -> None:
    """SIGTERM a process started with ``start_new_session=True`` and its children, then
    SIGKILL what is still there after the grace period."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def serve_endpoint(
    data_dir: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``python -m local serve --port 0`` in its own process (as AWS would be: it survives
    the test's crashes); yields the process and its URL, and stops it as a group. ``env``
    replaces the environment (e.g. with PREFECT_API_URL, for ``WithEvent``)."""
    command = ["local", "serve", "--port", "0", "--data-dir", str(data_dir), "--no-glue"]
    process = subprocess.Popen(
        [sys.executable, "-m", *command],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        key, _, url = first.partition("=")
        assert key == "AWS_ENDPOINT_URL_REDSHIFT_DATA", first
        yield process, url
    finally:
        stop_process_group(process)


@pytest.fixture
def fresh_data_dir() -> Iterator[Path]:
    """An empty data dir for a test that starts its own warehouse."""
    with throwaway_data_dir("test") as path:
        yield path


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """The session's local stack on a throw-away data dir (PostgreSQL stops at the end)."""
    with throwaway_data_dir("stack") as data_dir:
        stack = LocalStack.start(data_dir)
        try:
            yield stack
        finally:
            stack.stop()


@pytest.fixture(scope="session")
def warm_spark_drivers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One pool of warm Spark drivers for every test that runs Glue jobs on a service of its
    own (``register_glue(..., warm_drivers=...)``): a JVM with Hudi is started once per
    session and configuration, not once per test."""
    from local.glue_jobs.warm_pool import DriverPool

    pool = DriverPool(sys.executable, tmp_path_factory.mktemp("warm-drivers"), REPO_ROOT)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def redshift_data(local_stack: LocalStack) -> RedshiftDataAPIServiceClient:
    """A boto3 ``redshift-data`` client pointed at the local endpoint (identity AKIDLOCALTEST)."""
    return data_api_client(local_stack.endpoint_url)


@pytest.fixture
def pg_conn(local_stack: LocalStack) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to the warehouse database ``dev``."""
    with psycopg.connect(local_stack.pg_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def migrated(local_stack: LocalStack, redshift_data: RedshiftDataAPIServiceClient) -> LocalStack:
    """sql/ applied once per session, through the migration runner (idempotent)."""
    migrate(
        redshift_data,
        LOCAL_TARGET,
        parameters=LOCAL_MIGRATION_PARAMETERS,
        check=preflight,
        log=lambda _: None,
    )
    return local_stack


@pytest.fixture
def wh(
    migrated: LocalStack,
    redshift_data: RedshiftDataAPIServiceClient,
    pg_conn: psycopg.Connection[Any],
) -> Iterator[Warehouse]:
    """An empty warehouse (dimensions' fixed rows kept) with high-water marks reset."""
    pg_conn.execute(RESET)
    yield Warehouse(redshift_data, pg_conn)


# --------------------------------------------------------------------------------------
# A real Prefect server for the Prefect-layer tests (own PREFECT_HOME and SQLite file)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrefectApi:
    api_url: str
    home: Path
    storage: Path

    @property
    def log(self) -> Path:
        return self.home / SERVER_LOG_NAME

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a subprocess that runs flows against this server."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PREFECT_", "AWS_", "MYSTORE_"))
        }
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            PREFECT_LOCAL_STORAGE_PATH=str(self.storage),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL="INFO",
            PREFECT_CLIENT_MAX_RETRIES=str(CLIENT_RETRIES),
        )
        env.update(extra)
        return env

    def server_env(self, **extra: str) -> dict[str, str]:
        """Environment for this server's own process (``serving_prefect``): its database
        under ``home``, no UI, the repository importable from ``home``."""
        return self.env(
            PREFECT_SERVER_DATABASE_CONNECTION_URL=database_url(self.home / DATABASE_FILE),
            PREFECT_SERVER_UI_ENABLED="false",
            PYTHONPATH=str(REPO_ROOT),  # for `python -m local.prefect_server`, run in home
            **extra,
        )

    def runner_env(
        self, data_api_url: str, glue_url: str, *, poll_seconds: str = "1", **extra: str
    ) -> dict[str, str]:
        """Environment for a runner (``serve``) whose flow runs use the local endpoints as
        AWS, signing as the tests' key, and whose runner polls every ``poll_seconds``."""
        return self.env(
            AWS_ENDPOINT_URL_REDSHIFT_DATA=data_api_url,
            AWS_ENDPOINT_URL_GLUE=glue_url,
            AWS_ACCESS_KEY_ID=TEST_ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=TEST_SECRET_KEY,
            AWS_DEFAULT_REGION=LOCAL_REGION,
            MYSTORE_CLUSTER_IDENTIFIER="local-test",
            PREFECT_RUNNER_POLL_FREQUENCY=poll_seconds,
            **extra,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _drain_prefect_workers() -> None:
    """Send buffered logs and events before the server goes, instead of retrying at exit."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


@contextmanager
def serving_prefect(api: PrefectApi, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m local.prefect_server`` on ``api``'s port and home, with ``env``, in its
    own process group, logging to ``api.log``; yields once its API answers, stops it after.
    """
    port = urllib.parse.urlsplit(api.api_url).port
    with api.log.open("wb") as log:
        proc = subprocess.Popen(
            # The product's wrapper of `prefect server start`: a new database is a copy of
            # the template (local/prefect_database.py), not 9 CPU-s of migrations.
            [sys.executable, "-m", "local.prefect_server", "--port", str(port)],
            cwd=api.home,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited:\n{api.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{api.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server did not start:\n{api.log.read_text()}")
            time.sleep(0.3)
        yield proc
    finally:
        stop_process_group(proc)


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectApi]:
    """``prefect server start`` (through ``python -m local.prefect_server``) in its own
    process group, stopped at the end of the session."""
    home = tmp_path_factory.mktemp("prefect-home").resolve()
    port = _free_port()
    api = PrefectApi(f"http://127.0.0.1:{port}/api", home, home / "storage")
    env = api.server_env(
        # the deployment test waits for the scheduler to create the nightly's runs
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="1",
        # Writers no test needs, off: SQLite has one writer, and on a loaded CI machine
        # the session's flows got 503 (SQLITE_BUSY) past the client's retries.
        PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED="false",
        PREFECT_SERVER_SERVICES_FOREMAN_ENABLED="false",
    )
    with serving_prefect(api, env):
        try:
            yield api
        finally:
            _drain_prefect_workers()


@pytest.fixture
def prefect_settings(prefect_api: PrefectApi) -> Iterator[PrefectApi]:
    """Run flows in this process against the test server."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_CLIENT_MAX_RETRIES,
        PREFECT_LOCAL_STORAGE_PATH,
        temporary_settings,
    )

    with temporary_settings(
        updates={
            PREFECT_API_URL: prefect_api.api_url,
            PREFECT_LOCAL_STORAGE_PATH: prefect_api.storage,
            PREFECT_CLIENT_MAX_RETRIES: CLIENT_RETRIES,
        }
    ):
        yield prefect_api
