"""SIGTERM in the middle of a night (as a scheduler or `kill` sends it) stops the clean job:
every run it started ends STOPPED (none started after the signal runs on), no Spark
process (the warm driver) or PostgreSQL server outlives the run, the flow run is Crashed,
and the process still ends by the signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from local.stack import LocalStack
from tests.conftest import PrefectApi, throwaway_data_dir
from tests.local.stack_processes import processes_using

pytestmark = [pytest.mark.slow, pytest.mark.spark]

REPO = Path(__file__).resolve().parents[2]


def _spark_children(data_dir: Path) -> list[str]:
    """The clean job's processes of this data dir: the warm Spark driver that runs the
    night's clean runs (its log lives in the data dir), or a run's own child process."""
    return [
        " ".join(p.info["cmdline"] or [])
        for p in processes_using(data_dir)
        if any(word in " ".join(p.info["cmdline"] or []) for word in ("warm_driver", "raw2clean"))
    ]


def test_sigterm_stops_the_clean_runs(prefect_api: PrefectApi) -> None:
    with throwaway_data_dir("sigterm") as data_dir:
        log_path = data_dir.parent / f"{data_dir.name}.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "flows.nightly", "--data-dir", str(data_dir)],
                cwd=REPO,
                env=prefect_api.env(
                    MYSTORE_LOCAL_CUSTOMERS="100", MYSTORE_LOCAL_SALES_PER_DAY="100"
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 300
            while "Glue job raw2clean run" not in log_path.read_text():
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "the clean runs never started"
                time.sleep(0.5)
            assert _spark_children(data_dir), "no clean-job child process was running"
            proc.send_signal(signal.SIGTERM)
            returncode = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        output = log_path.read_text()
        log_path.unlink()
        assert returncode == -signal.SIGTERM, output[-3000:]  # re-raised, not swallowed
        assert "Crashed" in output
        assert "Interrupted (SIGTERM): the night stopped the Glue runs and statements" in output
        assert _spark_children(data_dir) == []
        # The night's own stack stopped on the way out: its PostgreSQL server too (Prefect
        # re-sent the signal to the default action, which ended the process at once).
        left = [" ".join(p.info["cmdline"] or []) for p in processes_using(data_dir)]
        assert not [c for c in left if "postgres" in c], left
        with (
            LocalStack.start(data_dir, with_glue=False) as stack,
            psycopg.connect(stack.pg_dsn) as conn,
        ):
            states = [r[0] for r in conn.execute("select state from local_glue.job_runs")]
        # Every run the night started was stopped, also those its worker threads were about
        # to start when the signal came (tasks.stopping): none ran on to SUCCEEDED.
        assert states and set(states) == {"STOPPED"}, states
