"""The command line refuses bad settings and arguments before anything starts."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from prefect import flow

from flows import history, nightly
from flows.cli import EXIT_NO_INPUT, run_cli
from flows.interrupts import EXIT_INTERRUPTED, interrupted_message
from flows.summary import NO_INPUT_STATUS, NightSummary, StepOutcome
from tests.conftest import REPO_ROOT, PrefectApi


@pytest.fixture(autouse=True)
def _no_mystore_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No MYSTORE_* settings going in, and none left behind: the CLI exports its options
    (``--target``) to the environment for the flow it starts."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("MYSTORE_") or key == "AWS_ENDPOINT_URL_REDSHIFT_DATA":
            monkeypatch.delenv(key)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_aws_target_without_a_warehouse_names_the_missing_variables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert nightly.main(["--target", "aws"]) == 2
    out = capsys.readouterr().out
    assert "needs exactly one of MYSTORE_CLUSTER_IDENTIFIER or MYSTORE_WORKGROUP_NAME" in out


def test_allowing_empty_input_on_aws_without_reports_exits_2_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "MYSTORE_WORKGROUP_NAME": "mystore-wg",
        "MYSTORE_RAW_PATH": "s3://bkt/raw",
        "MYSTORE_CLEAN_PATH": "s3://bkt/clean",
        "MYSTORE_ALLOW_EMPTY_INPUT": "true",
    }.items():
        monkeypatch.setenv(name, value)
    assert nightly.main(["--target", "aws"]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert "MYSTORE_ALLOW_EMPTY_INPUT=true on target 'aws' needs MYSTORE_GLUE_REPORT_PATH" in out


def test_a_bad_value_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MYSTORE_GLUE_TIMEOUT_MINUTES", "0")
    monkeypatch.setenv("MYSTORE_LOCAL_CUSTOMERS", "9" * 300)
    assert nightly.main([]) == 2
    out = " ".join(capsys.readouterr().out.split())  # rich wraps lines at 160 columns
    assert "MYSTORE_GLUE_TIMEOUT_MINUTES '0': Input should be greater than or equal to 1" in out
    # A huge value is shown shortened, and the message still says what is allowed.
    shown = "'" + "9" * 75 + "...'"
    assert f"MYSTORE_LOCAL_CUSTOMERS {shown}: at most 1,000,000: the embedded default" in out


def test_an_arn_is_printed_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = "arn:aws:secretsmanager:us-east-1:123456789012:secret:x';drop table y"
    monkeypatch.setenv("MYSTORE_SECRET_ARN", bad)
    assert nightly.main([]) == 2
    out = capsys.readouterr().out.replace("\n", "")
    assert f"MYSTORE_SECRET_ARN {bad!r} is not a Secrets Manager ARN" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--date", "2026-02-30"], "'2026-02-30' is not a date in the form YYYY-MM-DD"),
        (["--target", "gcp"], "invalid choice: 'gcp'"),
        # checked before the night, since the summary is written after it
        (["--summary-json", "/no/such/dir/s.json"], "the folder /no/such/dir does not exist"),
        (["--summary-json", "."], "'.' is a folder; give a file name in it"),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        nightly.main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_future_date_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        nightly.main(["--date", "9999-12-31"])
    assert exited.value.code == 2
    assert "logical date 9999-12-31 is in the future (today is" in capsys.readouterr().err


def test_the_flow_refuses_a_future_night_before_any_work() -> None:
    """Deployed runs do not pass through the CLI: the flow checks first thing."""
    with pytest.raises(ValueError, match="logical date 9999-12-31 is in the future"):
        nightly.nightly.fn(logical_date=date(9999, 12, 31))


def test_refuse_future_night_allows_today_and_the_past() -> None:
    today = date(2026, 12, 1)
    nightly.refuse_future_night(today, today)
    nightly.refuse_future_night(date(2026, 11, 30), today)
    with pytest.raises(ValueError, match="2026-12-02 is in the future"):
        nightly.refuse_future_night(date(2026, 12, 2), today)


def test_a_night_before_the_sample_data_exits_2_without_a_traceback_or_a_stack(
    fresh_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before the stack starts: no PostgreSQL, Spark or Prefect server for a typo
    in ``--date`` (each night used to start them all, and left the Prefect server up)."""
    data_dir = fresh_data_dir / "never-used"
    assert nightly.main(["--date", "0001-01-01", "--data-dir", str(data_dir)]) == 2
    out = capsys.readouterr()
    assert "Cannot prepare the night" in out.out
    assert "--date 0001-01-01 is before the sample data's first day 2026-11-01" in out.out
    assert "Traceback" not in out.out + out.err
    assert "Local AWS endpoint" not in out.out
    assert not data_dir.exists(), sorted(p.name for p in data_dir.iterdir())


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("notes.txt", "is a file; expected a directory"),
        ("notes.txt/data", "cannot be created"),
        ("data$(touch pwned)", "holds '$', which the local stack cannot take in a path"),
    ],
    ids=["a-file", "under-a-file", "shell-expansion"],
)
def test_a_data_dir_that_cannot_be_a_directory_is_refused_before_anything_starts(
    where: str, says: str, fresh_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = fresh_data_dir / "notes.txt"
    a_file.write_text("mine")
    data_dir = fresh_data_dir / where
    assert nightly.main(["--data-dir", str(data_dir)]) == 2
    out = " ".join(capsys.readouterr().out.split())  # rich wraps lines at 160 columns
    assert f"the data dir {data_dir} (--data-dir or MYSTORE_LOCAL_DATA_DIR) {says}" in out
    assert "Local AWS endpoint" not in out
    assert a_file.read_text() == "mine"


def test_a_history_range_before_the_sample_data_exits_2_without_a_stack(
    fresh_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As a night before the sample data: a backfill of days the sample data cannot have is
    refused before PostgreSQL, the endpoint, Spark or a Prefect server start (it used to
    start them all, then fail in the warehouse with no sales staged)."""
    data_dir = fresh_data_dir / "never-used"
    argv = ["--start-date", "2020-01-01", "--end-date", "2020-01-31", "--data-dir", str(data_dir)]
    assert history.main(argv) == 2
    out = " ".join(capsys.readouterr().out.split())  # rich wraps lines at 160 columns
    assert (
        "Cannot prepare the run: --end-date 2020-01-31 is before the sample data's first day "
        "2026-11-01: 2020-01-01..2020-01-31 has no sales to load"
    ) in out
    assert "Traceback" not in out
    assert "Local AWS endpoint" not in out
    assert not data_dir.exists(), sorted(p.name for p in data_dir.iterdir())


def test_history_refuses_a_reversed_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        history.main(["--start-date", "2026-11-03", "--end-date", "2026-11-01"])
    assert exited.value.code == 2
    assert "--start-date 2026-11-03 is after --end-date 2026-11-01" in capsys.readouterr().err


def test_a_given_endpoint_is_used_instead_of_starting_a_local_stack(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefect_settings: PrefectApi,
    capsys: pytest.CaptureFixture[str],
) -> None:
    given = "http://127.0.0.1:4566"
    monkeypatch.setenv("AWS_ENDPOINT_URL_REDSHIFT_DATA", given)
    seen: dict[str, Any] = {}

    @flow(name="endpoint-probe")
    def probe(force_rerun: bool = False) -> dict[str, Any]:
        seen["endpoint"] = os.environ.get("AWS_ENDPOINT_URL_REDSHIFT_DATA")
        return {"pipeline": "probe", "succeeded": True, "steps": []}

    never = tmp_path / "never-started"
    args = argparse.Namespace(target=None, data_dir=str(never))

    assert run_cli(args, probe) == 0

    assert seen["endpoint"] == given  # not overridden by a stack of its own
    assert not never.exists()  # no embedded stack was started
    assert f"Data API endpoint from AWS_ENDPOINT_URL_REDSHIFT_DATA: {given}" in (
        capsys.readouterr().out
    )


def test_a_prefect_api_lost_mid_run_exits_1_saying_what_to_do_without_a_traceback(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefect_settings: PrefectApi,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What Prefect's engine raises once its client gave up on the API (seen with the
    server killed mid-night: 8 minutes of retries, then this error's traceback)."""
    import httpx

    monkeypatch.setenv("AWS_ENDPOINT_URL_REDSHIFT_DATA", "http://127.0.0.1:4566")

    def engine_lost_the_api(**kwargs: Any) -> Any:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    args = argparse.Namespace(target=None, data_dir=str(tmp_path / "unused"))
    assert run_cli(args, engine_lost_the_api, nightly=True) == 1
    out = " ".join(capsys.readouterr().out.split())  # rich wraps lines at 160 columns
    assert (
        f"Prefect: the Prefect API at {prefect_settings.api_url} stopped answering during the "
        "night (ConnectError: [Errno 111] Connection refused)"
    ) in out
    assert "run the same command again to finish it" in out
    assert "Traceback" not in out


def test_a_night_that_passed_without_input_exits_3_with_its_verdict(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefect_settings: PrefectApi,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The seam after the pipeline: a summary with a no-input step, as the runner builds it
    from the clean job's report, becomes the flow's NoInput state and exit status 3."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_REDSHIFT_DATA", "http://127.0.0.1:4566")
    summary = NightSummary("mystore-nightly", date(2026, 12, 25), "local")
    summary.steps = [StepOutcome("clean_store_sale", "glue", NO_INPUT_STATUS, 1.0, 0, "run a")]
    states: list[Any] = []

    @flow(name="no-input-probe")
    def probe(force_rerun: bool = False) -> Any:
        return nightly.final_state(summary)

    def probe_and_keep_state(**kwargs: Any) -> Any:
        state = probe(**kwargs)
        states.append(state)
        return state

    args = argparse.Namespace(target=None, data_dir=str(tmp_path), summary_json=None)
    assert run_cli(args, probe_and_keep_state) == EXIT_NO_INPUT == 3

    assert states[0].is_completed() and states[0].name == "NoInput"
    assert states[0].message.startswith("NO INPUT: clean_store_sale found no raw partition")
    out = capsys.readouterr().out
    assert "mystore-nightly 2026-12-25 (local): succeeded (no input)" in out
    assert "NO INPUT: clean_store_sale found no raw partition for 2026-12-25" in out


def test_a_night_with_input_stays_a_plain_completed_state() -> None:
    summary = NightSummary("mystore-nightly", date(2026, 11, 2), "local")
    summary.steps = [StepOutcome("clean_store_sale", "glue", "succeeded", 1.0, 5, "run a")]
    assert nightly.final_state(summary) == summary.as_dict()


def test_the_help_documents_exit_status_3() -> None:
    assert "3 when the night passed with no input" in " ".join(
        nightly.build_parser().format_help().split()
    )


def test_local_results_live_in_the_data_dir_unless_the_user_chose(tmp_path: Path) -> None:
    """Under Prefect's default (``$PREFECT_HOME/storage``) every data dir shared one
    results folder, so a fresh data dir met another data dir's checkpoints."""
    from prefect.settings import PREFECT_HOME, PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    from flows.cli import _results_in

    home = tmp_path / "home"
    os.environ.pop("PREFECT_LOCAL_STORAGE_PATH", None)
    with temporary_settings({PREFECT_HOME: home, PREFECT_LOCAL_STORAGE_PATH: home / "storage"}):
        with _results_in(tmp_path / "data"):
            assert PREFECT_LOCAL_STORAGE_PATH.value() == tmp_path / "data" / "prefect" / "storage"
            assert os.environ["PREFECT_LOCAL_STORAGE_PATH"] == str(
                tmp_path / "data" / "prefect" / "storage"
            )
        assert PREFECT_LOCAL_STORAGE_PATH.value() == home / "storage"
        assert "PREFECT_LOCAL_STORAGE_PATH" not in os.environ

    mine = tmp_path / "my-results"
    chosen = {PREFECT_HOME: home, PREFECT_LOCAL_STORAGE_PATH: mine}
    with temporary_settings(chosen), _results_in(tmp_path / "data"):
        assert PREFECT_LOCAL_STORAGE_PATH.value() == mine


# Registered before the entry point runs, so (atexit runs the newest first) it runs after
# the entry point's own exit handlers and sees what they left.
FREEZE_PROBE = """
import atexit, gc, runpy, sys
atexit.register(lambda: print("frozen objects at exit:", gc.get_freeze_count()))
sys.argv = [sys.argv[1], "--help"]
runpy.run_module(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("module", [nightly, history])
def test_the_commands_spare_their_process_the_final_garbage_collection(
    module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m flows.nightly`` and ``flows.history`` freeze what is alive at exit
    (flows.cli.skip_the_final_collection_at_exit): Python's last full collection took 0.8 s
    of a night. Calling ``main()`` in a process (as these tests do) registers nothing."""
    registered: list[Any] = []
    monkeypatch.setattr(atexit, "register", lambda fn, *a, **k: registered.append(fn))
    with pytest.raises(SystemExit):
        module.main(["--help"])
    assert gc.freeze not in registered

    proc = subprocess.run(
        [sys.executable, "-c", FREEZE_PROBE, module.__name__],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    match = re.search(r"frozen objects at exit: (\d+)", proc.stdout)
    assert match, proc.stdout[-2000:]
    assert int(match.group(1)) > 0


INTERRUPT_PROBE = """
import argparse, sys, time
from prefect import flow
from prefect.runtime import flow_run
from flows.cli import run_cli

@flow(name="interrupt-probe")
def probe(force_rerun: bool = False) -> None:
    try:
        print("running", flow_run.id, flush=True)
        time.sleep(120)
    finally:  # the stop path: seconds of calls a second KeyboardInterrupt would cut short
        time.sleep(3)
        print("stop path finished", flush=True)

sys.exit(run_cli(argparse.Namespace(target=None, data_dir=None), probe))
"""


def _sigint_as_a_terminal_leaves_it() -> None:
    """A command started from a shell has Python's own SIGINT handler; a test worker's
    children may inherit an ignored SIGINT instead."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _running_probe(prefect_api: PrefectApi, **popen: Any) -> tuple[subprocess.Popen[str], str]:
    """INTERRUPT_PROBE started with no stack, once its flow runs; and its flow run's id."""
    env = prefect_api.env(AWS_ENDPOINT_URL_REDSHIFT_DATA="http://127.0.0.1:9")  # no stack
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERRUPT_PROBE],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("running "):
            return proc, line.split()[1]
    proc.kill()
    pytest.fail(f"the probe flow never ran:\n{proc.communicate(timeout=60)}")


def test_ctrl_c_stops_the_run_once_and_exits_130_without_a_traceback(
    prefect_api: PrefectApi,
) -> None:
    """Ctrl-C sent twice at once (``uv run`` with no terminal forwards the SIGINT its
    process group got too) and once more a second later: the first stops the run, the
    others do not cut its stop path short, and the command says what happened in one
    line, exits 130 and leaves the flow run Crashed."""
    from prefect.client.orchestration import SyncPrefectClient

    proc, run_id = _running_probe(prefect_api, preexec_fn=_sigint_as_a_terminal_leaves_it)
    try:
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # the same Ctrl-C, forwarded
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)  # an impatient second press
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED == 130, out + err
    assert "stop path finished" in out, out + err
    assert "Traceback" not in out + err
    assert "Interrupted (Ctrl-C): the run stopped the Glue runs and statements" in " ".join(
        out.split()
    )
    assert err.count("Still stopping what the run started") == 1, err
    with SyncPrefectClient(api=prefect_api.api_url) as client:
        assert client.read_flow_run(run_id).state.name == "Crashed"


def test_sigterm_unwinds_the_command_then_ends_it_by_the_signal(prefect_api: PrefectApi) -> None:
    """Prefect's engine re-sends SIGTERM once it recorded the run Crashed; that used to hit
    the default action and end the process inside the flow call, so the command's own exit
    path (the embedded stack's shutdown: its PostgreSQL server) never ran. It now does, and
    the process still ends by the signal, as a scheduler expects."""
    from prefect.client.orchestration import SyncPrefectClient

    proc, run_id = _running_probe(prefect_api)
    try:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGTERM, out + err
    assert "stop path finished" in out, out + err
    assert "Interrupted (SIGTERM): the run stopped the Glue runs and statements" in " ".join(
        out.split()
    ), out + err
    assert "Traceback" not in out + err
    with SyncPrefectClient(api=prefect_api.api_url) as client:
        assert client.read_flow_run(run_id).state.name == "Crashed"


def test_ctrl_c_before_the_run_or_after_it_says_so() -> None:
    from prefect.states import Completed

    assert "before the night started: nothing submitted" in interrupted_message(
        False, None, "night"
    )
    assert "after the run ended (Completed)" in interrupted_message(True, Completed(), "run")


def test_a_warehouse_that_fails_the_migration_check_exits_1_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the migration check raised when it met an attached stack's warehouse dead (seen
    with PostgreSQL killed under ``local up``): a traceback ending in SubmitError."""
    from local import embedded
    from tasks.jobs import SubmitError

    monkeypatch.delenv("AWS_ENDPOINT_URL_REDSHIFT_DATA", raising=False)

    @contextlib.contextmanager
    def warehouse_down(*args: Any, **kwargs: Any) -> Iterator[None]:
        raise SubmitError(
            "submit raised ExecuteStatementException for statement s-1, and describing it "
            "failed (... the local warehouse's PostgreSQL server (/x/pg) is not running ...)"
        )
        yield

    monkeypatch.setattr(embedded, "prepare_embedded", warehouse_down)
    args = argparse.Namespace(target=None, data_dir=str(tmp_path / "data"))
    assert run_cli(args, lambda **kwargs: pytest.fail("the night ran"), nightly=True) == 1
    out = capsys.readouterr()
    said = " ".join(out.out.split())
    assert "Local warehouse: submit raised ExecuteStatementException for statement s-1" in said
    assert "PostgreSQL server (/x/pg) is not running" in said
    assert "Traceback" not in out.out + out.err
