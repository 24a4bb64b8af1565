"""Where the test suite's CPU goes: every process's CPU time, by kind and by the test that
started it, while the README's test command runs.

The suite is bound by CPU, not by waiting (docs/performance.md): on 2 cores its wall time is
about its busy CPU-seconds divided by the cores it gets. Its 4-minute goal (issue 12) is
therefore a CPU budget, and this bench says where that budget goes: Spark JVMs, Prefect
servers, the xdist workers, the flow-run processes Prefect's runner spawns, PostgreSQL,
and the machine's own processes (the VM's kernel threads and agent, which are not ours but
take cores from the suite all the same).

A sampler reads ``/proc/<pid>/stat`` of every process every ``--interval`` seconds and keeps
each process's last user+system time; a process is attributed to the test whose
``PYTEST_CURRENT_TEST`` its environment inherited (pytest sets it while a test runs), so a
session fixture's process (a worker's Prefect server, the warm Spark driver) counts for the
test that first needed it, and a process alive before the run counts only what it used
during it. A process that lives less than one interval may be missed, and each process's
last interval is lost: the totals are a lower bound, close to the machine's busy time
(printed beside them from ``/proc/stat``). The sampler itself costs about 2 % of a core.

Usage: uv run --locked python bench/bench_suite_cpu.py [--top 25] [--interval 0.2]
       [-- pytest arguments (default: the README's, -n 3 --dist loadgroup)]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README_PYTEST_ARGS = ["-n", "3", "--dist", "loadgroup"]
TICKS = os.sysconf("SC_CLK_TCK")
# The machine's own (kernel threads, the VM's agent): not the suite's, but on its cores.
SYSTEM_COMMS = ("kdamond", "kworker", "ksoftirqd", "rcu_", "kcompactd", "migration/")
SYSTEM_COMMANDS = ("/process_api",)


@dataclass
class Process:
    comm: str
    command: str
    test: str
    cpu: float = 0.0
    before: float = 0.0  # CPU it had used when the run began (alive before it)

    @property
    def during(self) -> float:
        return self.cpu - self.before


def kind_of(process: Process) -> str:
    """A short name for what a process is, from its command line."""
    command, comm = process.command, process.comm
    if comm == "java":
        return "Spark JVM"
    if "spark-class" in command or "spark-submit" in command:
        return "Spark launcher scripts"
    if comm.startswith(SYSTEM_COMMS) or command.startswith(SYSTEM_COMMANDS):
        return "the machine's own"
    if comm.startswith("postgres"):
        return "PostgreSQL"
    if "chrom" in comm:
        return "Chromium"
    if comm == "node" or command.startswith("node "):
        return "Node (asl-validator)"
    if "local.prefect_server" in command or "prefect server start" in command:
        return "Prefect server"
    if "exec(eval(sys.stdin" in command:  # execnet's bootstrap of an xdist worker
        return "xdist worker"
    if "bin/pytest" in command:
        return "pytest (controller)"
    if "spawn_main" in command or "forkserver" in command or "_workspace_supervisor" in command:
        return "flow-run process (Prefect runner)"
    if "prefect worker" in command or " -m prefect " in command:
        return "prefect CLI / worker"
    if " -m flows." in command:
        return "python -m flows.*"
    if " -m local" in command or "warm_driver" in command:
        return "python -m local.*"
    if "python" in comm or "python" in command:
        return "other Python"
    return f"other ({comm})"


def _read(pid: str) -> tuple[str, str, float] | None:
    """(comm, start time key, CPU seconds) of one process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    close = text.rindex(")")
    fields = text[close + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    return text[text.index("(") + 1 : close], fields[19], cpu


def _first_look(pid: str, comm: str) -> Process:
    command = test = ""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            command = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
        with open(f"/proc/{pid}/environ", "rb") as environ:
            for entry in environ.read().split(b"\0"):
                if entry.startswith(b"PYTEST_CURRENT_TEST="):
                    test = entry.split(b"=", 1)[1].decode(errors="replace")
    except OSError:
        pass
    return Process(comm, command, test)


def sample(seen: dict[tuple[str, str], Process], stop: threading.Event, interval: float) -> None:
    me = str(os.getpid())
    first = True
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid == me:
                continue
            read = _read(pid)
            if read is None:
                continue
            comm, started, cpu = read
            process = seen.get((pid, started))
            if process is None:
                process = seen[(pid, started)] = _first_look(pid, comm)
                if first:
                    process.before = cpu
            process.cpu = cpu
            process.comm = comm  # Spark's launcher script execs java in the same process
        first = False
        stop.wait(interval)


def busy_seconds() -> float:
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, stat.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / TICKS


def test_name(test: str) -> str:
    """``tests/x.py::test_y (call)`` → ``tests/x.py::test_y``."""
    return test.rsplit(" (", 1)[0] if test else "(no test: session start-up or the machine)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=25, help="tests to list (default 25)")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between samples")
    parser.add_argument("pytest_args", nargs="*", help="after --; default -n 3 --dist loadgroup")
    args = parser.parse_args()
    if args.interval <= 0:
        parser.error(f"--interval {args.interval} must be above 0")
    command = ["uv", "run", "--locked", "pytest", *(args.pytest_args or README_PYTEST_ARGS)]
    seen: dict[tuple[str, str], Process] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=sample, args=(seen, stop, args.interval), daemon=True)
    busy_before, started = busy_seconds(), time.monotonic()
    sampler.start()
    print(f"running: {' '.join(command)}", flush=True)
    done = subprocess.run(command, cwd=REPO, check=False)  # pytest's progress shows as it runs
    wall, busy = time.monotonic() - started, busy_seconds() - busy_before
    stop.set()
    sampler.join()

    by_kind: dict[str, float] = {}
    count: Counter[str] = Counter()
    by_test: dict[str, float] = {}
    jvms_by_test: dict[str, list[float]] = {}
    for process in seen.values():
        kind = kind_of(process)
        by_kind[kind] = by_kind.get(kind, 0.0) + process.during
        count[kind] += 1
        if kind not in ("the machine's own", "xdist worker"):
            name = test_name(process.test)
            by_test[name] = by_test.get(name, 0.0) + process.during
        if kind == "Spark JVM":
            jvms_by_test.setdefault(test_name(process.test), []).append(process.during)
    sampled = sum(by_kind.values())
    print(
        f"\nexit {done.returncode}; wall {wall:.1f} s; machine busy {busy:.0f} CPU-s"
        f" ({busy / wall:.2f} of {os.cpu_count()} cores); sampled {sampled:.0f} CPU-s"
    )
    print(f"\n{'CPU-s':>8} {'share':>6} {'procs':>6}  kind")
    small = {kind for kind, cpu in by_kind.items() if cpu < 0.5}
    rows = [(cpu, count[kind], kind) for kind, cpu in by_kind.items() if kind not in small]
    if small:
        others = (sum(by_kind[k] for k in small), sum(count[k] for k in small))
        rows.append((*others, "others (each under 0.5 CPU-s)"))
    for cpu, processes, kind in sorted(rows, reverse=True):
        print(f"{cpu:8.1f} {cpu / max(sampled, 1e-9):6.1%} {processes:6d}  {kind}")
    print(f"\nprocesses a test started (the xdist workers' own CPU aside), top {args.top}:")
    for test, cpu in sorted(by_test.items(), key=lambda item: -item[1])[: args.top]:
        print(f"{cpu:8.1f}  {test}")
    # The Spark group (``@spark`` in the test id) runs on one worker; a JVM started by any
    # other test shares the cores with that worker's JVMs.
    outside = {t: j for t, j in jvms_by_test.items() if "@spark" not in t}
    print(
        f"\nSpark JVMs started outside the Spark group: {sum(len(j) for j in outside.values())},"
        f" {sum(sum(j) for j in outside.values()):.1f} CPU-s"
    )
    for test, jvms in sorted(outside.items(), key=lambda item: -sum(item[1])):
        print(f"{sum(jvms):8.1f}  {test} ({len(jvms)} JVM{'s' if len(jvms) > 1 else ''})")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
