"""Which process is which: a pid and its start time, compared in a way clock changes do not
move.

A pid alone can be reused by a later process, so the stack records the processes it
watches (a stack's owner, a Prefect server and its owner, a Data API statement's endpoint,
a Glue run's driver) as a pid and a start time, and a process is "that one" only when
both match. psutil's ``create_time()`` is no such time on Linux: it adds the process's
start, counted in clock ticks since boot, to the boot time, and it reads the boot time from
``/proc/stat`` on each call, where the kernel derives it from the wall clock. When the
clock is stepped (NTP after a laptop wakes, a VM's clock catching up: 15 s on the CI
machine once), every process's ``create_time()`` moves with it, every recorded start stops
matching, and a running stack looked dead: an attached night aborted itself ("the stack
ended", seen in CI), and the same comparison would have stopped a Prefect server for an
owner it thought gone and let an endpoint abort a live peer's statements as orphans.

``start_time`` is therefore the start in seconds since boot on Linux (``create_time()``
minus the boot time, both as psutil reads them: the ticks themselves), which only a reboot
changes; elsewhere (macOS, BSD) psutil's ``create_time()`` is the start the kernel
recorded, which clock steps do not move either. Starts recorded in seconds since the epoch
by earlier releases (in a ``stack.json`` or a statement row written before an upgrade) are
still compared as before.
"""

from __future__ import annotations

import os
import sys

import psutil

# A start in seconds since the epoch (before 2001-09-09) is no uptime: recorded by an
# earlier release, it is compared with ``create_time()`` as then.
_EPOCH_STARTS_FROM = 1e9
# Ticks are 10 ms (USER_HZ); starts from the same ticks are equal floats.
_SAME_START_WITHIN = 0.005


def start_time(pid: int) -> float | None:
    """The start of process ``pid`` (see the module's docstring), or None when there is no
    such process."""
    try:
        return _start_of(psutil.Process(pid))
    except psutil.Error:
        return None


def this_process() -> tuple[int, float]:
    """This process as (pid, start), for another process to tell whether it still runs."""
    pid = os.getpid()
    return pid, _start_of(psutil.Process(pid))


def process_alive(pid: int, started: float | None = None) -> bool:
    """True when ``pid`` runs (a zombie does not) and, given ``started`` (from
    ``start_time`` or ``this_process``), is that very process, not a later one that
    reuses its pid."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        if started is None:
            return True
        if started >= _EPOCH_STARTS_FROM:
            return abs(process.create_time() - started) < 0.01
        return abs(_start_of(process) - started) < _SAME_START_WITHIN
    except psutil.Error:
        return False


def _start_of(process: psutil.Process) -> float:
    if sys.platform.startswith("linux"):
        # Both read /proc/stat's boot time; a step between the two reads (microseconds)
        # is the only way this can move, and the next check sees it right again.
        return round(process.create_time() - psutil.boot_time(), 2)
    return float(process.create_time())
