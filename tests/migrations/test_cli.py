"""``python -m migrations``: options, settings it needs (and only those), which warehouse."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.stack import LocalStack
from migrations.cli import build_parser, main
from migrations.planning import read_directory
from migrations.runner import SQL_DIR

ENDPOINT = "AWS_ENDPOINT_URL_REDSHIFT_DATA"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No MYSTORE_* settings and no endpoint from the caller's shell."""
    for key in list(os.environ):
        if key.startswith("MYSTORE_") or key == ENDPOINT:
            monkeypatch.delenv(key)
    yield


@pytest.fixture
def given_endpoint(local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's local endpoint, given the way a user gives one: standard variables."""
    monkeypatch.setenv(ENDPOINT, local_stack.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLOCALTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local-test-secret")
    return local_stack.endpoint_url


def test_the_command_has_helpful_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--dry-run",
        "--repair",
        "--glue-database",
        "--iam-role-arn",
        "--dialect",
        "--sql-dir",
        ENDPOINT,
    ):
        assert option in text


def test_bad_warehouse_settings_exit_2_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MYSTORE_TARGET", "aws")
    assert main(["--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "needs exactly one of MYSTORE_CLUSTER_IDENTIFIER or MYSTORE_WORKGROUP_NAME" in err
    monkeypatch.setenv("MYSTORE_WORKGROUP_NAME", "wg")  # the Data API's own rule, not a traceback
    assert main(["--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "Invalid settings: MYSTORE_WORKGROUP_NAME 'wg' is invalid; allowed: 3-63" in err


def test_a_given_endpoint_is_used_and_no_local_stack_is_started(
    given_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    never = tmp_path / "never-started"
    history = f"mig_{uuid.uuid4().hex[:8]}.history"  # unseen: every file is pending

    assert main(["--dry-run", "--data-dir", str(never), "--history-table", history]) == 0

    out = capsys.readouterr().out
    assert f"Data API endpoint from {ENDPOINT}: {given_endpoint}" in out
    assert "dialect: postgres" in out  # asked the warehouse behind the endpoint
    assert f"{len(read_directory(SQL_DIR))} to apply, 0 up to date" in out
    assert os.environ[ENDPOINT] == given_endpoint  # left as the user gave it
    assert not never.exists()  # no embedded warehouse was started


def test_an_aws_target_needs_no_zone_paths(
    given_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The nightly needs MYSTORE_RAW_PATH / MYSTORE_CLEAN_PATH on AWS; migrations never read
    them, so they must not be demanded."""
    monkeypatch.setenv("MYSTORE_TARGET", "aws")
    monkeypatch.setenv("MYSTORE_WORKGROUP_NAME", "mystore-wg")
    history = f"mig_{uuid.uuid4().hex[:8]}.history"

    assert main(["--dry-run", "--history-table", history]) == 0

    out = capsys.readouterr().out
    assert "would apply: V001__dw_mystore.sql" in out
    assert "(dry run: nothing was changed)" in out


@pytest.mark.slow
def test_the_command_migrates_a_fresh_local_warehouse(
    fresh_data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MYSTORE_TARGET", "local")
    data_dir = str(fresh_data_dir / "local")
    assert main(["--dry-run", "--data-dir", data_dir]) == 0
    out = capsys.readouterr().out
    assert "Embedded warehouse in" in out
    assert "would apply: V001__dw_mystore.sql" in out
    assert main(["--data-dir", data_dir]) == 0
    assert main(["--data-dir", data_dir]) == 0
    files = len(read_directory(SQL_DIR))
    assert capsys.readouterr().out.rstrip().endswith(f"0 to apply, {files} up to date")
    assert ENDPOINT not in os.environ  # the embedded run exported nothing
