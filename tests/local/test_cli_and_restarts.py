"""The CLI, and statements surviving client and endpoint process restarts (real processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from local.__main__ import format_table, main
from local.stack import LocalStack, client_env
from tests.conftest import TEST_ACCESS_KEY, data_api_client, serve_endpoint

REPO = Path(__file__).resolve().parents[2]
TARGET: dict[str, Any] = {"ClusterIdentifier": "local-cluster", "Database": "dev"}

CLIENT_SCRIPT = """
import json, os, sys
import boto3
client = boto3.client("redshift-data")  # endpoint, region and keys from the environment
described = client.describe_statement(Id=sys.argv[1])
result = client.get_statement_result(Id=sys.argv[1])
print(json.dumps({"status": described["Status"], "records": result["Records"]}))
"""


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_client_in_a_new_process_reads_an_earlier_statement(
    local_stack: LocalStack, redshift_data: RedshiftDataAPIServiceClient
) -> None:
    submitted = redshift_data.execute_statement(
        Sql="select 'kept' as word", WaitTimeSeconds=10, **TARGET
    )
    env = {
        **os.environ,
        **client_env(local_stack.endpoint_url, {}),
        "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": "another-process",
    }
    done = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT, submitted["Id"]],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(done.stdout) == {"status": "FINISHED", "records": [[{"stringValue": "kept"}]]}


def start_long_statement(url: str) -> str:
    client = data_api_client(url)
    submitted = client.execute_statement(Sql="select pg_sleep(60)", **TARGET)
    deadline = time.monotonic() + 20
    while client.describe_statement(Id=submitted["Id"])["Status"] != "STARTED":
        assert time.monotonic() < deadline, "statement never started"
        time.sleep(0.05)
    return submitted["Id"]


@pytest.mark.slow
def test_statements_of_a_killed_endpoint_are_aborted_when_an_endpoint_starts(
    local_stack: LocalStack, pg_conn: psycopg.Connection[Any]
) -> None:
    with serve_endpoint(local_stack.data_dir) as (first, url):
        statement_id = start_long_statement(url)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    with serve_endpoint(local_stack.data_dir) as (_second, url):
        described = data_api_client(url).describe_statement(Id=statement_id)
    assert described["Status"] == "ABORTED"
    assert f"(pid {first.pid})" in described["Error"]
    assert "stopped before the statement finished" in described["Error"]
    running = pg_conn.execute(
        "select count(*) from pg_stat_activity where application_name = %s",
        [f"local-data-api {statement_id}"],
    ).fetchone()
    assert running == (0,)


def test_a_running_endpoint_aborts_statements_of_a_peer_that_died(local_stack: LocalStack) -> None:
    with serve_endpoint(local_stack.data_dir) as (peer, url):
        statement_id = start_long_statement(url)
        shared = data_api_client(local_stack.endpoint_url)
        assert shared.describe_statement(Id=statement_id)["Status"] == "STARTED"
        os.kill(peer.pid, signal.SIGKILL)
        peer.wait(timeout=10)
    described = shared.describe_statement(Id=statement_id)
    assert described["Status"] == "ABORTED"
    assert f"(pid {peer.pid})" in described["Error"]


def test_stopping_an_endpoint_aborts_its_running_statements(local_stack: LocalStack) -> None:
    with serve_endpoint(local_stack.data_dir) as (process, url):
        statement_id = start_long_statement(url)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    described = data_api_client(local_stack.endpoint_url).describe_statement(Id=statement_id)
    assert described["Status"] == "ABORTED"
    assert "endpoint stopped" in described["Error"]


def test_query_prints_a_table_and_fails_with_the_database_message(local_stack: LocalStack) -> None:
    done = cli("query", "--data-dir", str(local_stack.data_dir), "select 1 as one, null as nothing")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split() == ["one", "|", "nothing"]
    assert "NULL" in done.stdout
    assert "(1 row)" in done.stdout
    failed = cli("query", "--data-dir", str(local_stack.data_dir), "select * from missing_table")
    assert failed.returncode == 1
    assert 'relation "missing_table" does not exist' in failed.stderr


def test_query_on_a_data_dir_without_a_warehouse_creates_none(tmp_path: Path) -> None:
    """A mistyped --data-dir: exit 2 naming it, and no empty warehouse started there."""
    typo = tmp_path / ".locl"
    done = cli("query", "--data-dir", str(typo), "select 1")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"no local warehouse in {typo}" in done.stderr
    assert not typo.exists()


@pytest.mark.parametrize("command", ["up", "serve", "query", "status", "down"])
def test_the_nights_data_dir_variable_is_every_commands_default(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``MYSTORE_LOCAL_DATA_DIR`` is the nights' data dir: ``local up`` must serve it (a
    stack on .local instead left every night standalone). An unusable one is refused by the
    variable's name, before anything starts; ``--help`` says which is the default."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    monkeypatch.setenv("MYSTORE_LOCAL_DATA_DIR", str(a_file))
    with pytest.raises(SystemExit) as exited:
        main([command, *(["select 1"] if command == "query" else [])])
    assert exited.value.code == 2
    assert f"MYSTORE_LOCAL_DATA_DIR: {a_file} is a file" in capsys.readouterr().err

    monkeypatch.setenv("MYSTORE_LOCAL_DATA_DIR", "nights-dir")
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert "nights-dir, from MYSTORE_LOCAL_DATA_DIR" in " ".join(capsys.readouterr().out.split())


def test_the_data_dir_is_the_flag_else_the_variable_else_dot_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Which one ``query`` chose, named by its refusal of a data dir with no warehouse."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MYSTORE_LOCAL_DATA_DIR", str(tmp_path / "nights"))
    for argv, chosen in (
        (["query", "select 1"], tmp_path / "nights"),
        (["query", "--data-dir", str(tmp_path / "given"), "select 1"], tmp_path / "given"),
    ):
        assert main(argv) == 2
        assert f"no local warehouse in {chosen}:" in capsys.readouterr().err
    monkeypatch.delenv("MYSTORE_LOCAL_DATA_DIR")
    assert main(["query", "select 1"]) == 2
    assert f"no local warehouse in {tmp_path / '.local'}:" in capsys.readouterr().err


def test_status_reports_the_running_warehouse(local_stack: LocalStack) -> None:
    done = cli("status", "--data-dir", str(local_stack.data_dir))
    assert done.returncode == 0
    assert f"warehouse: running (pid {local_stack.warehouse.pid})" in done.stdout


@pytest.mark.parametrize("command", ["serve", "query", "status", "stop"])
def test_every_command_has_help(command: str) -> None:
    done = cli(command, "--help")
    assert done.returncode == 0
    assert "--data-dir" in done.stdout


@pytest.mark.parametrize("command", ["up", "serve", "query", "status", "down"])
@pytest.mark.parametrize(
    ("where", "says"),
    [("notes.txt", "is a file; expected a directory"), ("notes.txt/data", "cannot be created")],
    ids=["a-file", "under-a-file"],
)
def test_a_data_dir_that_cannot_be_a_directory_is_refused_by_name(
    command: str, where: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    data_dir = tmp_path / where
    with pytest.raises(SystemExit) as exited:
        main([command, "--data-dir", str(data_dir), *(["select 1"] if command == "query" else [])])
    assert exited.value.code == 2
    assert f"{data_dir} {says}" in capsys.readouterr().err
    assert a_file.read_text() == "mine"


def test_format_table() -> None:
    assert format_table(["a", "long_name"], [(1, None), (22, "x")]).splitlines() == [
        "a  | long_name",
        "---+----------",
        "1  | NULL",
        "22 | x",
        "(2 rows)",
    ]


def test_client_env_keeps_real_credentials() -> None:
    assert client_env("http://127.0.0.1:1", {"AWS_ACCESS_KEY_ID": "AKIDREAL"}) == {
        "AWS_ENDPOINT_URL_REDSHIFT_DATA": "http://127.0.0.1:1",
        "AWS_ENDPOINT_URL_GLUE": "http://127.0.0.1:1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    assert client_env("http://127.0.0.1:1", {})["AWS_ACCESS_KEY_ID"] == "AKIDLOCAL"


def test_serve_on_a_busy_port_says_so(local_stack: LocalStack) -> None:
    port = local_stack.endpoint_url.rsplit(":", 1)[1]
    done = cli("serve", "--port", port, "--data-dir", str(local_stack.data_dir), "--no-glue")
    assert done.returncode == 1
    assert f"Could not listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
    # The failed start released its handle: the shared server is still up.
    listed = data_api_client(local_stack.endpoint_url).list_statements(MaxResults=1)
    assert listed["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["up", "--port", "99999"], "argument --port: '99999' is not a TCP port; allowed: 0-65535"),
        (["serve", "--port", "-5"], "argument --port: '-5' is not a TCP port"),
        (["serve", "--max-active-statements", "0"], "'0' is invalid; allowed: a whole number of 1"),
    ],
)
def test_a_port_or_limit_out_of_range_is_refused_before_anything_starts(
    argv: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "never"
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--data-dir", str(data_dir)])
    assert exited.value.code == 2
    assert says in capsys.readouterr().err
    assert not data_dir.exists()
