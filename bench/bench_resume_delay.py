"""Delay from a statement's end to the suspended flow run continuing: event path vs poller.

Starts the suspend rig (bench/_suspend_rig.py: a Prefect server, the local Data API
endpoint knowing it, a runner serving the suspend test deployment with
``PREFECT_RUNNER_POLL_FREQUENCY`` as given, the resume automation), then for each path
runs deployed nights whose one statement sleeps ``--seconds`` and prints, per run:
statement end (the endpoint's UpdatedAt) to Resuming (the server's state time), and to
Running again (the resumed flow's engine started: "the flow continuing").

* event: the automation installed (``flows.resume_events``), no poller;
* poller: the automation paused, ``flows.resume_waiting.one_pass`` every ``--interval`` s
  (prefect.yaml's default: 60), at whatever phase the statement ends.

Goal (issue 10): event path <= 15 s on this machine, most of it process start.

    uv run --locked python bench/bench_resume_delay.py [--runs 3] [--poller-runs 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._suspend_rig import Night, Rig, pause_automation, poller, run_night, suspend_rig


def delays(night: Night) -> dict[str, float]:
    """Statement end to Resuming, and to the resumed flow's engine Running."""
    suspended_at = max(s.timestamp for s in night.states if s.name == "Suspended")
    after = [s for s in night.states if s.timestamp > suspended_at]
    resuming = min(s.timestamp for s in after if s.name == "Resuming")
    running = min(s.timestamp for s in after if s.is_running())
    return {
        "to_resuming": (resuming - night.statement_ended).total_seconds(),
        "to_running": (running - night.statement_ended).total_seconds(),
        "completed": float(night.completed),
    }


def report(path: str, rows: list[dict[str, float]]) -> None:
    for key in ("to_resuming", "to_running"):
        values = [r[key] for r in rows]
        print(
            f"{path:7} {key:12} runs={len(values)} "
            f"median={statistics.median(values):6.1f}s max={max(values):6.1f}s "
            f"all={[round(v, 1) for v in values]}",
            flush=True,
        )
    print(f"{path:7} completed {int(sum(r['completed'] for r in rows))}/{len(rows)}", flush=True)


def measure(rig: Rig, runs: int, seconds: float) -> list[dict[str, float]]:
    return [delays(run_night(rig, seconds)) for _ in range(runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="event-path runs (%(default)s)")
    parser.add_argument("--poller-runs", type=int, default=2, help="poller runs (%(default)s)")
    parser.add_argument("--interval", type=float, default=60.0, help="poller interval, s")
    parser.add_argument("--seconds", type=float, default=5.0, help="statement's pg_sleep, s")
    parser.add_argument("--runner-poll", default="10", help="PREFECT_RUNNER_POLL_FREQUENCY")
    args = parser.parse_args()

    with suspend_rig("bench-resume", runner_poll=args.runner_poll) as rig:
        print(
            f"# statement {args.seconds}s, runner poll {args.runner_poll}s, "
            f"poller interval {args.interval}s",
            flush=True,
        )
        report("event", measure(rig, args.runs, args.seconds))
        if args.poller_runs:
            pause_automation(rig.api.api_url)
            with poller(rig, args.interval):
                report("poller", measure(rig, args.poller_runs, args.seconds))


if __name__ == "__main__":
    main()
