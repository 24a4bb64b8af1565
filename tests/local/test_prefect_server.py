"""The data dir's Prefect server that a standalone night leaves running: reused by the next
stack, shown by ``local status``, stopped by ``local down``, and gone with its data dir."""

from __future__ import annotations

import os
import shutil
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.lease import wait_gone
from local.prefect_server import SERVER_FILE, running_server, start_prefect_server
from local.processes import process_alive
from local.stack import LocalStack
from tests.conftest import CLIENT_RETRIES
from tests.local.stack_processes import local_cli, processes_using, stack_data_dir


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with stack_data_dir("prefect-kept") as path:
        yield path


def test_a_kept_server_is_reused_by_the_next_stack_shown_by_status_and_stopped_by_down(
    data_dir: Path,
) -> None:
    with LocalStack.start(data_dir, with_glue=False, with_prefect=True, keep_prefect=True) as first:
        first.wait_ready()
        assert first.prefect is not None and not first.prefect.reused
        server = first.prefect
    assert process_alive(server.pid, server.started), "the kept server stopped with its stack"
    with urllib.request.urlopen(server.ui_url + "/", timeout=30) as ui:
        assert ui.status == 200

    status = local_cli("status", "--data-dir", str(data_dir))
    assert f"prefect: {server.ui_url} (UI; API {server.api_url}, answering; pid {server.pid}" in (
        status.stdout
    )
    assert f"`python -m local down --data-dir {data_dir}` stops it" in status.stdout

    with LocalStack.start(
        data_dir, with_glue=False, with_prefect=True, keep_prefect=True
    ) as second:
        second.wait_ready(timeout=30)
        assert second.prefect is not None and second.prefect.reused
        assert (second.prefect.pid, second.prefect.api_url) == (server.pid, server.api_url)
    assert process_alive(server.pid, server.started)

    down = local_cli("down", "--data-dir", str(data_dir), timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"Stopped the data dir's Prefect server (pid {server.pid})." in down.stdout
    assert wait_gone(server.pid, server.started, 30)
    assert running_server(data_dir) is None
    assert not (data_dir / "prefect" / SERVER_FILE).exists()
    assert processes_using(data_dir) == []
    assert "prefect: not running" in local_cli("status", "--data-dir", str(data_dir)).stdout


def test_a_server_owned_by_a_stack_stops_with_it_and_is_not_offered_for_reuse(
    data_dir: Path,
) -> None:
    with LocalStack.start(data_dir, with_glue=False, with_prefect=True) as stack:
        assert stack.prefect is not None and not stack.prefect.keep_running
        assert running_server(data_dir) is None  # it follows its owner: not for reuse
        server = stack.prefect
    assert wait_gone(server.pid, server.started, 30)


def test_a_server_that_dies_is_started_again_and_a_connected_client_carries_on(
    data_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Killed mid-night, the server used to leave the night retrying refused connections for
    8 minutes, ending in a traceback: the stack now starts it again on its port, and the
    client's own retries of a refused connection carry the call through."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    with LocalStack.start(data_dir, with_glue=False, with_prefect=True) as stack:
        stack.wait_ready()
        first = stack.prefect
        assert first is not None
        settings = {PREFECT_API_URL: first.api_url, PREFECT_CLIENT_MAX_RETRIES: CLIENT_RETRIES}
        with temporary_settings(updates=settings), get_client(sync_client=True) as client:
            client.hello()  # connected once: from now on the client retries refused connections
            os.killpg(first.pid, signal.SIGKILL)
            assert wait_gone(first.pid, first.started, 10)
            flow_id = client.create_flow_from_name("made-after-the-restart")
            assert client.read_flow(flow_id).name == "made-after-the-restart"
        server = stack.prefect
        assert server is not None and server.pid != first.pid and server.port == first.port
        assert not server.keep_running  # still one that stops with its stack
    assert wait_gone(server.pid, server.started, 30)
    err = capfd.readouterr().err
    assert (
        f"The local Prefect server (pid {first.pid}, {first.ui_url}; its log: {first.log_file})"
        " stopped: exit code" in err
    )
    assert f"The local Prefect server is back (pid {server.pid}, {server.ui_url})." in err


def test_a_kept_server_stops_itself_when_its_data_dir_is_deleted(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_prefect_server(data_dir, None)
    assert server.keep_running and running_server(data_dir) is not None
    time.sleep(2)  # let it reach its watchdog
    shutil.rmtree(data_dir, ignore_errors=True)
    assert wait_gone(server.pid, server.started, 40), "the server outlived its data dir"
