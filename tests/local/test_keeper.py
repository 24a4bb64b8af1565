"""The stack's keepers: a killed warehouse is started again under a running stack (real
PostgreSQL, real endpoint), and the limits on a stand-in process (a Prefect server started
again, and a client carried through it, is in test_prefect_server.py)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local import keeper
from local.keeper import Keeper, PrefectKeeper
from local.lease import read_state
from local.lifecycle import print_stack
from local.prefect_server import PrefectServer
from local.stack import LocalStack
from local.warehouse.postgres import ServerLog, while_restarting, with_database
from tests.conftest import data_api_client, throwaway_data_dir
from tests.local.redshift_data.statements import TARGET, ended_within, started
from tests.local.stack_processes import processes_using


def a_server_process(home: Path) -> PrefectServer:
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    return PrefectServer(port=1, home=home, pid=process.pid, process=process)


def wait_until(done: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def said_once(capfd: pytest.CaptureFixture[str], kept: Keeper[Any], seconds: float) -> str:
    """Everything written to stderr, read once ``kept`` stopped watching (or ``seconds``
    passed): reading capfd while the keeper's thread writes to it loses text (under load a
    line came back cut, the next one lost)."""
    wait_until(lambda: not kept.watching(), seconds)
    return capfd.readouterr().err


def rows(client: RedshiftDataAPIServiceClient, sql: str) -> list[list[object]]:
    statement_id = client.execute_statement(Sql=sql, **TARGET)["Id"]
    ended = ended_within(client, statement_id, 30)
    assert ended["Status"] == "FINISHED", ended
    if not ended["HasResultSet"]:
        return []
    records = client.get_statement_result(Id=statement_id)["Records"]
    return [[next(iter(field.values())) for field in record] for record in records]


def test_a_killed_warehouse_is_started_again_with_its_committed_work(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """kill -9 of a ready stack's postmaster (the out-of-memory killer's way): the statement
    it ran ends FAILED, the stack starts PostgreSQL again on the same data dir within
    seconds, committed rows are there, the same client's next statements run, and the
    stack's stop stops the new server."""
    with throwaway_data_dir("keeper") as data_dir:
        # with Glue: the stack holds the data dir's lease, as `local up` does (no JVM starts)
        with LocalStack.start(data_dir, kind="up") as stack:
            stack.wait_ready()
            client = data_api_client(stack.endpoint_url)
            rows(client, "create table kept (n int)")
            rows(client, "insert into kept values (1), (2)")
            running = started(client, "select pg_sleep(60)")
            killed = stack.warehouse.pid
            assert killed is not None
            os.kill(killed, signal.SIGKILL)
            # what the clean runs' catalog refresh does: wait for the restart, not fail
            with while_restarting(lambda: psycopg.connect(stack.pg_dsn)) as conn:
                assert conn.execute("select count(*) from kept").fetchone() == (2,)
            began = time.monotonic()
            with pytest.raises(psycopg.OperationalError, match='database "nope" does not exist'):
                while_restarting(lambda: psycopg.connect(with_database(stack.pg_dsn, "nope")))
            assert time.monotonic() - began < 5, "an error that is not a restart was waited out"

            wait_until(lambda: stack.warehouse.pid != killed, 60)
            assert stack.warehouse.pid != killed and stack.warehouse.running()
            # `local status` shows what the keeper said, timed, once it is said
            wait_until(lambda: "is back" in str(read_state(data_dir)), 10)
            state = read_state(data_dir)
            assert state is not None
            print_stack(state)

            ended = ended_within(client, running["Id"], 60)
            assert ended["Status"] == "FAILED", ended
            assert rows(client, "select n from kept order by n") == [[1], [2]]
            rows(client, "insert into kept values (3)")
            assert rows(client, "select count(*) from kept") == [[3]]
        out, err = capfd.readouterr()  # once its keeper is closed: nothing writes any more
        status = out[out.index("restarts (the keepers' latest lines; all in the log):") :]
        said = status.splitlines()[1:]
        assert len(said) == 2, status
        assert re.fullmatch(
            r"  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d The local warehouse's PostgreSQL server "
            rf"\(pid {killed}, .*\) stopped: its postmaster is gone.*",
            said[0],
        ), said
        assert "The local warehouse's PostgreSQL server is back (pid " in said[1], said
        assert (
            f"The local warehouse's PostgreSQL server (pid {killed}, {data_dir / 'pg'}; "
            f"its log: {data_dir / 'pg' / 'log'}) stopped: its postmaster is gone"
        ) in err
        assert (
            "Starting it again in place: statements it was running have failed" in err
            and "is back (pid " in err
        ), err
        left = []
        for process in processes_using(data_dir):
            with contextlib.suppress(psutil.Error):  # one that ends as it is listed is gone
                left += [process.cmdline()] if "postgres" in process.name() else []
        assert left == [], f"the restarted server outlived its stack: {left}"


def test_a_server_that_keeps_dying_is_left_stopped_saying_where_its_log_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(keeper, "RESTARTS_AT_MOST", 0)
    restarted: list[PrefectServer] = []
    server = a_server_process(tmp_path)
    kept = PrefectKeeper(tmp_path, server, restarted.append, interval=0.05)
    try:
        assert server.process is not None
        server.process.kill()
        err = said_once(capfd, kept, 10)
    finally:
        kept.close()
    assert (
        f"The local Prefect server (pid {server.pid}, http://127.0.0.1:1; its log: "
        f"{tmp_path / 'server.log'}) stopped again: exit code -9. After 0 restarts in 10 "
        "minutes it is left stopped."
    ) in err
    assert restarted == [] and kept.server is server


def test_a_closed_keeper_leaves_a_server_stopped_on_purpose(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    restarted: list[PrefectServer] = []
    server = a_server_process(tmp_path)
    kept = PrefectKeeper(tmp_path, server, restarted.append, interval=0.05)
    kept.close()
    server.stop(force=True)
    time.sleep(0.3)  # several intervals: a keeper still watching would have said so by now
    assert restarted == [] and "local:" not in capfd.readouterr().err


class SleeperKeeper(Keeper["subprocess.Popen[bytes]"]):
    """The base keeper's rules over a plain child process."""

    what = "The sleeper"
    restart_note = "nothing depends on it."

    def why_stopped(self, server: subprocess.Popen[bytes]) -> str | None:
        code = server.poll()
        return None if code is None else f"exit code {code}"

    def describe(self, server: subprocess.Popen[bytes]) -> str:
        return f"pid {server.pid}"

    def log_file(self, server: subprocess.Popen[bytes]) -> Path:
        return self.data_dir / "sleeper.log"

    def start_again(self, server: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        return a_sleeper()

    def discard(self, server: subprocess.Popen[bytes]) -> None:
        server.kill()


def a_sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_restarts_are_limited_within_a_window_not_for_the_stacks_life(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """One restart allowed per window: a second death inside it is left alone, one after it
    is started again (an ``up`` stack runs for days)."""
    monkeypatch.setattr(keeper, "RESTARTS_AT_MOST", 1)
    monkeypatch.setattr(keeper, "RESTART_WINDOW_SECONDS", 1.5)
    restarted: list[subprocess.Popen[bytes]] = []
    kept = SleeperKeeper(tmp_path, a_sleeper(), restarted.append, interval=0.05)
    try:
        kept.server.kill()
        wait_until(lambda: len(restarted) == 1, 10)
        time.sleep(1.6)  # past the window: the next death is started again too
        kept.server.kill()
        wait_until(lambda: len(restarted) == 2, 10)
        kept.server.kill()  # within the window of the last restart
        err = said_once(capfd, kept, 10)
        assert err.count("The sleeper is back") == 2, err
        assert "stopped again: exit code -9. After 1 restart in 0.025 minutes" in err, err
        assert len(restarted) == 2 and not kept.watching()
    finally:
        kept.close()
        for process in restarted:
            process.kill()
            process.wait()


class BrokenKeeper(SleeperKeeper):
    """A keeper whose checks or restarts fail in ways no start error covers."""

    fail_check = False

    def why_stopped(self, server: subprocess.Popen[bytes]) -> str | None:
        if self.fail_check:
            raise psutil.AccessDenied(server.pid)
        return super().why_stopped(server)

    def start_again(self, server: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        raise RuntimeError("pgserver's lock file is corrupt")


@pytest.mark.parametrize("failing", ["restart", "check"])
def test_a_keeper_that_meets_an_unexpected_error_says_so_and_stops_watching(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], failing: str
) -> None:
    """Not a thread dying in a traceback while the stack goes on believing it is kept."""
    kept = BrokenKeeper(tmp_path, a_sleeper(), lambda server: None, interval=0.05)
    try:
        if failing == "check":
            kept.fail_check = True
            err = said_once(capfd, kept, 10)
            assert "The sleeper is no longer watched: checking it failed (AccessDenied:" in err
            assert "if it stops it stays stopped." in err
        else:
            kept.server.kill()
            err = said_once(capfd, kept, 10)
            assert (
                "The sleeper could not be started again: RuntimeError: pgserver's lock file "
                "is corrupt"
            ) in err
        assert not kept.watching()
        assert "Traceback" not in err
    finally:
        kept.close()
        kept.server.kill()
        kept.server.wait()


class StoppedWarehouse:
    """Stands in for a Warehouse handle whose postmaster is gone."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata, self.pid, self.alive = pgdata, 4242, True
        self.log = ServerLog.of(pgdata)

    def running(self) -> bool:
        return self.alive


@pytest.mark.parametrize("new_fatal", [False, True])
def test_the_reason_a_warehouse_stopped_is_read_from_the_log_since_it_was_watched(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    new_fatal: bool,
) -> None:
    """A FATAL line written before the keeper began (a session terminated hours ago) is not
    why the server stopped; one written since is."""
    monkeypatch.setattr(keeper, "RESTARTS_AT_MOST", 0)
    log = tmp_path / "pg" / "log"
    log.parent.mkdir()
    log.write_text(
        "2026-12-04 10:00:00.000 UTC [17] FATAL:  terminating connection due to administrator command\n"
    )
    server = StoppedWarehouse(log.parent)
    kept = keeper.WarehouseKeeper(tmp_path, server, lambda s: None, interval=0.05)  # type: ignore[arg-type]
    try:
        if new_fatal:
            with log.open("a") as fh:
                fh.write(
                    '2026-12-04 11:00:00.000 UTC [18] PANIC:  could not write to file "pg_wal/x": No space left on device\n'
                )
        server.alive = False
        err = said_once(capfd, kept, 10)
    finally:
        kept.close()
    assert "administrator command" not in err, err
    cause = ' (the log\'s last FATAL line: PANIC:  could not write to file "pg_wal/x": No space left on device)'
    assert (
        f"stopped again: its postmaster is gone{cause if new_fatal else ''}. After 0 restarts"
        in err
    ), err
