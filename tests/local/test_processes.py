"""A process is known by its pid and start, and a step of the wall clock changes neither.

The clock step is made where the kernel shows it to psutil: the boot time in /proc/stat,
which Linux derives from the wall clock (psutil's ``_pslinux.boot_time`` reads it on each
call). On the CI machine the clock once stepped 15 s during the suite; the night attached
to the end-to-end module's ``local up`` then took the live stack for ended and aborted."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from local.lease import StackInfo, when_owner_ends
from local.processes import process_alive, start_time, this_process

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="the clock step is simulated at Linux's /proc/stat boot time (psutil._pslinux)",
)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def step_the_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    from psutil import _pslinux

    booted = _pslinux.boot_time()
    monkeypatch.setattr(_pslinux, "boot_time", lambda: booted + seconds)


def test_a_clock_step_leaves_every_recorded_process_itself(
    sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    me, my_start = this_process()
    child_start = start_time(sleeper.pid)
    assert child_start is not None
    epoch_start = psutil.Process(sleeper.pid).create_time()

    step_the_clock(monkeypatch, 15.0)

    # what the earlier comparison read: every start moved with the clock
    assert psutil.Process(sleeper.pid).create_time() == pytest.approx(epoch_start + 15.0)
    assert process_alive(me, my_start)
    assert process_alive(sleeper.pid, child_start)
    assert start_time(sleeper.pid) == child_start
    # a start recorded by an earlier release (seconds since the epoch) compares as then
    assert not process_alive(sleeper.pid, epoch_start)
    assert process_alive(sleeper.pid, epoch_start + 15.0)


def test_another_start_a_dead_process_or_a_zombie_is_not_the_recorded_one(
    sleeper: subprocess.Popen[bytes],
) -> None:
    started = start_time(sleeper.pid)
    assert started is not None
    assert process_alive(sleeper.pid) and process_alive(sleeper.pid, started)
    assert not process_alive(sleeper.pid, started + 0.01)  # a later process on the same pid
    assert not process_alive(sleeper.pid, started - 0.01)
    sleeper.kill()
    deadline = time.monotonic() + 10
    while psutil.Process(sleeper.pid).status() != psutil.STATUS_ZOMBIE:  # not reaped yet
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not process_alive(sleeper.pid, started)
    sleeper.wait()
    assert not process_alive(sleeper.pid, started)
    assert start_time(sleeper.pid) is None


def test_a_watched_owner_is_not_taken_for_ended_when_the_clock_steps(
    sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What aborted the attached night: its watcher (every 0.2 s here) saw the owner's
    recorded start no more."""
    started = start_time(sleeper.pid)
    assert started is not None
    owner = StackInfo(kind="up", pid=sleeper.pid, started=started, data_dir="/nowhere")
    ended = threading.Event()
    with when_owner_ends(owner, lambda _: ended.set(), every=0.2):
        step_the_clock(monkeypatch, -3600.0)
        assert not ended.wait(1.5), "a clock step was taken for the owner's end"
        sleeper.kill()
        assert ended.wait(10), "the owner's real end went unnoticed"
