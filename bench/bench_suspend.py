"""What suspend mode saves: flow infrastructure held, resume delay, API calls while waiting.

The suspend rig (bench/_suspend_rig.py: one Prefect server, the local Data API endpoint
knowing it, a runner serving the suspend test deployment with runner poll 10 s, Prefect's
default, the resume automation). Three deployed nights whose one statement (``pg_sleep``) runs ``--seconds`` (default 120, issue 10's
figure):

* poll: the flow process waits (long-poll DescribeStatement);
* suspend, event path: the resume automation installed (``flows.resume_events``);
* suspend, poller: the automation paused, ``flows.resume_waiting.one_pass`` every
  ``--interval`` s (prefect.yaml's resume-waiting: 60).

Measured, per run: process-seconds of the runner's flow-run processes (psutil, sampled
every 0.2 s, Python's resource tracker aside) in all and while the run was Suspended;
seconds in Running states (the server's state history); statement end (the endpoint's
UpdatedAt) to the flow running again ("continuing": the resumed engine's Running state;
poll mode: to the step's end, Completed); the flow's own AWS calls (the summary artifact's
count, which for suspend mode is the last execution's). And for the poller, one pass with
one run waiting: its HTTP requests to the Prefect API (counted at httpx) and its AWS calls
(``PassReport.aws_calls``), times passes per hour.

    uv run --locked python bench/bench_suspend.py [--seconds 120] [--interval 60]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._suspend_rig import (
    Rig,
    pause_automation,
    poller,
    poller_runtime,
    run_night,
    suspend_rig,
)

API_CALLS = re.compile(r"API calls: (\d+) \(([^)]*)\)")


@dataclass
class Sampler:
    """Process-seconds of the runner's flow-run processes, and which fell in a window."""

    runner_pid: int
    period: float = 0.2
    seen: dict[int, list[float]] = field(default_factory=dict)  # pid -> sample times
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.wait(self.period):
            now = time.time()
            try:
                children = psutil.Process(self.runner_pid).children(recursive=True)
            except psutil.Error:
                return
            for process in children:
                try:
                    if process.status() == psutil.STATUS_ZOMBIE:
                        continue
                    if "resource_tracker" in " ".join(process.cmdline()):
                        continue
                except psutil.Error:
                    continue
                self.seen.setdefault(process.pid, []).append(now)

    def seconds(self, start: float = 0.0, end: float = float("inf")) -> float:
        """Sampled process-seconds between ``start`` and ``end`` (epoch seconds)."""
        return self.period * sum(
            1 for times in self.seen.values() for t in times if start <= t <= end
        )

    @contextmanager
    def running(self) -> Iterator[Sampler]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


def one_night(rig: Rig, seconds: float, mode: str) -> dict[str, Any]:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with Sampler(rig.runner.pid).running() as sampler:
        night = run_night(rig, seconds, wait_mode=mode)
        time.sleep(2)  # the last flow process exits after reporting its final state
    with SyncPrefectClient(api=rig.api.api_url) as api:
        artifacts = api.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[night.run.id]))
        )
    states = night.states
    running_seconds, suspended_seconds, suspended_windows = 0.0, 0.0, []
    for state, following in itertools.pairwise(states):
        length = (following.timestamp - state.timestamp).total_seconds()
        if state.is_running():
            running_seconds += length
        if state.name == "Suspended":
            suspended_seconds += length
            suspended_windows.append((state.timestamp.timestamp(), following.timestamp))
    if mode == "suspend":
        last_suspend = max(s.timestamp for s in states if s.name == "Suspended")
        continuing = min(
            s.timestamp for s in states if s.timestamp > last_suspend and s.is_running()
        )
    else:
        continuing = states[-1].timestamp
    aws_calls = ""
    for artifact in artifacts:
        found = API_CALLS.search(str(artifact.data or ""))
        if found:
            aws_calls = f"{found.group(1)} ({found.group(2)})"
    return {
        "completed": night.completed,
        "process_seconds": sampler.seconds(),
        "held_while_suspended": sum(
            sampler.seconds(start + 1.0, end.timestamp()) for start, end in suspended_windows
        ),
        "running_seconds": running_seconds,
        "suspended_seconds": suspended_seconds,
        "executions": sum(1 for s in states if s.is_running()),
        "end_to_continuing": (continuing - night.statement_ended).total_seconds(),
        "aws_calls": aws_calls,
    }


def poller_pass_calls(api_url: str, endpoint: str) -> tuple[int, int, int]:
    """One resume-waiting pass with one run waiting: (Prefect API requests, AWS calls,
    runs waiting), the Prefect requests counted at httpx (sync and async clients)."""
    import httpx
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.resume_waiting import one_pass

    counted: list[str] = []
    sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send

    def count_sync(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if str(request.url).startswith(api_url):
            counted.append(str(request.url))
        return sync_send(self, request, **kwargs)

    async def count_async(
        self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any
    ) -> httpx.Response:
        if str(request.url).startswith(api_url):
            counted.append(str(request.url))
        return await async_send(self, request, **kwargs)

    runtime = poller_runtime(endpoint)
    httpx.Client.send = count_sync  # type: ignore[method-assign]
    httpx.AsyncClient.send = count_async  # type: ignore[method-assign]
    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            report = one_pass(runtime, logging.getLogger("bench-suspend"))
    finally:
        httpx.Client.send = sync_send  # type: ignore[method-assign]
        httpx.AsyncClient.send = async_send  # type: ignore[method-assign]
    return len(counted), report.aws_calls, report.waiting


def print_table(rows: dict[str, dict[str, Any]], seconds: float) -> None:
    print(f"\n# one statement of {seconds:.0f} s; runner poll 10 s")
    header = (
        f"{'mode':16} {'ok':>3} {'proc-s':>7} {'held susp.':>10} {'Running s':>9} "
        f"{'Suspended s':>11} {'execs':>5} {'end->cont.':>10}  flow AWS calls"
    )
    print(header)
    for name, r in rows.items():
        print(
            f"{name:16} {'yes' if r['completed'] else 'NO':>3} {r['process_seconds']:7.1f} "
            f"{r['held_while_suspended']:10.1f} {r['running_seconds']:9.1f} "
            f"{r['suspended_seconds']:11.1f} {r['executions']:5d} "
            f"{r['end_to_continuing']:9.1f}s  {r['aws_calls']}"
        )
    poll = rows["poll"]["process_seconds"]
    for name in ("suspend/event", "suspend/poller"):
        if poll:
            share = 100 * rows[name]["process_seconds"] / poll
            print(f"{name}: {share:.0f} % of poll mode's process-seconds (goal <= 10 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="statement's pg_sleep, s")
    parser.add_argument("--interval", type=float, default=60.0, help="poller interval, s")
    args = parser.parse_args()

    with suspend_rig("bench-suspend") as rig:
        rows = {"poll": one_night(rig, args.seconds, "poll")}
        rows["suspend/event"] = one_night(rig, args.seconds, "suspend")
        pause_automation(rig.api.api_url)
        calls: tuple[int, int, int] | None = None
        with poller(rig, args.interval):
            measuring = threading.Thread(
                target=lambda: rows.update(
                    {"suspend/poller": one_night(rig, args.seconds, "suspend")}
                )
            )
            measuring.start()
            while measuring.is_alive():  # once the run waits: count one pass's calls
                time.sleep(1)
                if calls is None:
                    sample = poller_pass_calls(rig.api.api_url, rig.endpoint)
                    if sample[2] == 1:
                        calls = sample
        print_table(rows, args.seconds)
        if calls is not None:
            passes = 3600 / args.interval
            print(
                f"poller, one run waiting: {calls[0]} Prefect API requests and "
                f"{calls[1]} AWS call(s) per pass (measured); x {passes:.0f} "
                f"passes/h = {calls[0] * passes:.0f} Prefect + "
                f"{calls[1] * passes:.0f} AWS calls per waiting run per hour"
            )


if __name__ == "__main__":
    main()
