"""The keeper's limits, on a stand-in process (a restart on a real server, and a client
carried through it, is in test_prefect_server.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from local import prefect_keeper
from local.prefect_keeper import PrefectKeeper
from local.prefect_server import PrefectServer


def a_server_process(home: Path) -> PrefectServer:
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    return PrefectServer(port=1, home=home, pid=process.pid, process=process)


def test_a_server_that_keeps_dying_is_left_stopped_saying_where_its_log_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(prefect_keeper, "RESTARTS_AT_MOST", 0)
    restarted: list[PrefectServer] = []
    server = a_server_process(tmp_path)
    keeper = PrefectKeeper(tmp_path, server, restarted.append, interval=0.05)
    try:
        assert server.process is not None
        server.process.kill()
        deadline = time.monotonic() + 10
        while "left stopped" not in (err := capfd.readouterr().err) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        keeper.close()
    assert (
        "The local Prefect server on port 1 stopped again (exit code -9); after 0 restarts it "
        f"is left stopped. Its log: {tmp_path / 'server.log'}"
    ) in err
    assert restarted == [] and keeper.server is server


def test_a_closed_keeper_leaves_a_server_stopped_on_purpose(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    restarted: list[PrefectServer] = []
    server = a_server_process(tmp_path)
    keeper = PrefectKeeper(tmp_path, server, restarted.append, interval=0.05)
    keeper.close()
    server.stop(force=True)
    time.sleep(0.3)  # several intervals: a keeper still watching would have said so by now
    assert restarted == [] and "local:" not in capfd.readouterr().err
