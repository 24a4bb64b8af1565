"""``python -m local up | down | serve | status`` in real processes: one owner per data dir,
a real Prefect server with its UI, and nothing left running after ``down`` or a kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from local.lease import read_state, wait_gone
from local.prefect_server import PORT_FILE, PrefectStartError, choose_port, start_prefect_server
from local.processes import process_alive, this_process
from local.stack import LOCAL_REGION
from tests.conftest import data_api_client
from tests.local.stack_processes import (
    REPO,
    clean_env,
    local_cli,
    processes_using,
    stack_data_dir,
)
from tests.local.test_cli_and_restarts import start_long_statement

ORPHAN_MESSAGE = "stopped while this run was"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with stack_data_dir("lifecycle") as path:
        yield path


@pytest.mark.slow
def test_up_serves_the_ui_a_second_stack_is_refused_and_down_stops_everything(
    data_dir: Path,
) -> None:
    up = local_cli("up", "--data-dir", str(data_dir))
    assert up.returncode == 0, up.stdout + up.stderr
    info = read_state(data_dir)
    assert info is not None and info.kind == "up" and info.ready
    assert info.endpoint_url and info.prefect_ui_url
    with urllib.request.urlopen(info.prefect_ui_url + "/", timeout=30) as ui:
        assert ui.status == 200
    assert f"prefect: {info.prefect_ui_url} (UI;" in up.stdout
    assert f"export PREFECT_API_URL={info.prefect_api_url}\n" in up.stdout  # to deploy

    again = local_cli("up", "--data-dir", str(data_dir))
    assert again.returncode == 0 and "Already up" in again.stdout
    assert f"pid {info.pid}" in again.stdout

    statement_id = start_long_statement(info.endpoint_url)
    glue = boto3.client(
        "glue",
        endpoint_url=info.endpoint_url,
        region_name=LOCAL_REGION,
        aws_access_key_id="AKIDLOCALTEST",
        aws_secret_access_key="local-test-secret",
    )
    run_id = glue.start_job_run(JobName="raw2clean")["JobRunId"]

    second = local_cli("serve", "--data-dir", str(data_dir), "--port", "0", timeout=120)
    assert second.returncode == 1
    assert f"is in use by python -m local up, pid {info.pid}" in second.stderr

    client = data_api_client(info.endpoint_url)
    assert client.describe_statement(Id=statement_id)["Status"] == "STARTED"
    run = glue.get_job_run(JobName="raw2clean", RunId=run_id)["JobRun"]
    assert ORPHAN_MESSAGE not in run.get("ErrorMessage", "")
    client.cancel_statement(Id=statement_id)

    down = local_cli("down", "--data-dir", str(data_dir), timeout=180)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "Stopped python -m local up" in down.stdout
    assert processes_using(data_dir) == []
    status = local_cli("status", "--data-dir", str(data_dir))
    assert "warehouse: not running" in status.stdout
    assert "endpoint: not running" in status.stdout


@pytest.mark.slow
def test_kill_9_of_the_owner_stops_its_prefect_server_and_down_cleans_up(
    data_dir: Path,
) -> None:
    up = local_cli("up", "--data-dir", str(data_dir))
    assert up.returncode == 0, up.stdout + up.stderr
    info = read_state(data_dir)
    assert info is not None and info.prefect_pid is not None
    assert process_alive(info.prefect_pid, info.prefect_started)

    os.kill(info.pid, signal.SIGKILL)
    assert wait_gone(info.prefect_pid, info.prefect_started, 30), (
        "Prefect server outlived its owner"
    )

    down = local_cli("down", "--data-dir", str(data_dir), timeout=180)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "Stopped the warehouse" in down.stdout
    assert processes_using(data_dir) == []


def test_a_prefect_api_url_of_the_user_is_kept_and_no_server_started(data_dir: Path) -> None:
    serve = subprocess.Popen(
        [sys.executable, "-m", "local", "serve", "--port", "0", "--data-dir", str(data_dir)],
        cwd=REPO,
        env=clean_env(PREFECT_API_URL="http://127.0.0.1:9/api"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert serve.stdout is not None
        lines = []
        while not (line := serve.stdout.readline()).startswith("# Local stack:"):
            assert line, f"serve ended early: {lines}"
            lines.append(line)
        assert not any(line.startswith("# Prefect UI") for line in lines)
        info = read_state(data_dir)
        assert info is not None and info.kind == "serve" and info.prefect_api_url is None
        assert not (data_dir / "prefect").exists()
    finally:
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) == 0
    assert read_state(data_dir) is None


def test_a_prefect_server_that_cannot_start_says_where_its_log_is(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = start_prefect_server(tmp_path, this_process(), port=port)
        with pytest.raises(PrefectStartError) as failed:
            server.wait_healthy(timeout=120)
    message = str(failed.value)
    assert f"127.0.0.1:{port} exited with code 1" in message
    assert str(tmp_path / "prefect" / "server.log") in message
    assert "already in use" in message
    assert "PREFECT_API_URL" in message


def test_the_remembered_port_is_reused_when_free_and_replaced_when_taken(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        remembered = probe.getsockname()[1]
    (tmp_path / PORT_FILE).write_text(f"{remembered}\n")
    assert choose_port(tmp_path) == remembered
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", remembered))
        busy.listen()
        assert choose_port(tmp_path) != remembered
    assert choose_port(tmp_path, requested=remembered) == remembered
