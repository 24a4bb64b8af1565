"""Helpers for tests that run ``python -m local`` in real processes and count what is left."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without Prefect, AWS or MYSTORE settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "AWS_", "MYSTORE_"))
    }
    env.update(extra)
    return env


def local_cli(*args: str, timeout: float = 420, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local", *args],
        cwd=REPO,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def processes_using(data_dir: Path) -> list[psutil.Process]:
    """Live processes whose command line or working directory is inside ``data_dir``
    (PostgreSQL's ``-D``, the stack's ``--data-dir``, the Prefect server's cwd)."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            text = " ".join(process.info["cmdline"] or []) + " " + (process.info["cwd"] or "")
        except psutil.Error:
            continue
        if str(data_dir) in text:
            found.append(process)
    return found


def kill_leftovers(data_dir: Path) -> None:
    """Safety net after a failed test: no process of this data dir outlives the test."""
    for process in processes_using(data_dir):
        with contextlib.suppress(OSError):
            os.kill(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def stack_data_dir(prefix: str) -> Iterator[Path]:
    """A throwaway data dir whose stack (and kept Prefect server) is taken down afterwards."""
    from tests.conftest import throwaway_data_dir

    with throwaway_data_dir(prefix) as path:
        try:
            yield path
        finally:
            local_cli("down", "--data-dir", str(path), timeout=120)
            kill_leftovers(path)
