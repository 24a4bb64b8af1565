"""The randomized chaos run, shared by tests/chaos and bench/bench_chaos.py.

A run loads the same seeded nights twice on one warehouse: first fault-free (each night's
clean rows seeded, then ``CALL sp_run_incremental_load()``), which is the truth; then
through the flow (``tests/chaos/night_flow.py``) under the seeded faults of
``tests/chaos/plan.py``: endpoint faults (throttles, drops after processing, 5xx before
and after processing, latency), SIGKILL of a flow process at a random point, a second
invocation of the same night in another process, and the termination of the running CALL's
PostgreSQL backend. A night is rerun (as an operator would) until it succeeds, at most
``MAX_INVOCATIONS`` times. Afterwards the warehouse must equal the truth and every
StatementName (``pipeline/night/step/attempt-N``) must have executed at most once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from local.endpoint import Faults
from tests.chaos.night_flow import run_night
from tests.chaos.plan import NightPlan, describe, planned_count, seed_night
from tests.sql.staging import CHECKSUM_SQL, RESET, START, Warehouse

NIGHT_PROCESS = Path(__file__).with_name("night_flow.py")
MAX_INVOCATIONS = 4
NIGHT_BOUND_SECONDS = 90.0  # a night that has not ended by then counts as a hang
CHILD_START_SECONDS = 60.0  # a child process's imports on a loaded machine


@dataclass
class ChaosEnvironment:
    """What a run needs: the endpoint's fault switches, its URL, the warehouse (for seeding
    and reading; psycopg), its DSN (the backend killer's own connection) and the
    environment of child flow processes (the same Prefect server and result storage)."""

    faults: Faults
    endpoint_url: str
    wh: Warehouse
    pg_dsn: str
    child_env: dict[str, str]
    log: Callable[[str], None] = print


@dataclass
class ChaosReport:
    seed: int
    planned_faults: int
    fired: Counter[str] = field(default_factory=Counter)
    nights: int = 0
    nights_succeeded: int = 0
    invocations: int = 0
    failed_invocations: int = 0
    lost_rows: int = 0
    extra_rows: int = 0
    duplicate_rows: int = 0
    duplicate_executions: list[str] = field(default_factory=list)
    statements_executed: int = 0
    hangs: list[str] = field(default_factory=list)
    failed_nights: list[str] = field(default_factory=list)
    tables_equal: bool = False
    wall_seconds: float = 0.0
    events: list[str] = field(default_factory=list)

    @property
    def faults_injected(self) -> int:
        return sum(self.fired.values())

    def lines(self) -> list[str]:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.fired.items())) or "none"
        return [
            f"seed                  {self.seed}",
            f"faults injected       {self.faults_injected} of {self.planned_faults} planned"
            f" ({kinds})",
            f"nights run            {self.nights} ({self.nights_succeeded} succeeded,"
            f" {self.invocations} invocations, {self.failed_invocations} ended FAILED"
            ")",
            f"lost rows             {self.lost_rows}",
            f"extra rows            {self.extra_rows}",
            f"duplicate rows        {self.duplicate_rows}",
            f"duplicate executions  {len(self.duplicate_executions)}"
            f" (of {self.statements_executed} named statements executed)",
            f"hangs                 {len(self.hangs)} (bound {NIGHT_BOUND_SECONDS:.0f}s per night)",
            f"failed nights         {len(self.failed_nights)}",
            f"warehouse = truth     {self.tables_equal}",
            f"wall time             {self.wall_seconds:.1f}s",
        ]


def table_rows(wh: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    return {name: wh.rows(sql) for name, sql in CHECKSUM_SQL.items()}


def load_truth(env: ChaosEnvironment, seed: int, plans: list[NightPlan]) -> dict[str, Any]:
    """The fault-free reference: each night seeded, then the load called once."""
    env.wh.conn.execute(RESET)
    env.wh.etl_clock = START
    for plan in plans:
        seed_night(env.wh, seed, plan.index, plan.night)
        env.wh.call("call stg_mystore.sp_run_incremental_load()")
    return table_rows(env.wh)


def arm(faults: Faults, plan: NightPlan) -> None:
    for fault in plan.endpoint_faults():
        operation = str(fault.operation)
        if fault.kind == "throttle":
            faults.throttle(operation, fault.times)
        elif fault.kind == "drop_after":
            faults.drop_after(operation, fault.times)
        elif fault.kind == "server_error":
            faults.server_error(operation, fault.times, code="InternalServerException")
        elif fault.kind == "server_error_after":
            faults.server_error(
                operation, fault.times, processed=True, code="InternalServerException"
            )
        elif fault.kind == "latency":
            faults.latency(operation, fault.seconds, times=fault.times)


class Child:
    """A flow invocation in its own process group; it says READY once imported."""

    def __init__(self, env: ChaosEnvironment, pipeline: str, plan: NightPlan) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(NIGHT_PROCESS), "--endpoint", env.endpoint_url,
             "--pipeline", pipeline, "--night", plan.night.isoformat()],
            env={**env.child_env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.strip())
            if line.startswith("READY"):
                self._ready.set()
        self._ready.set()

    def wait_ready(self) -> None:
        self._ready.wait(CHILD_START_SECONDS)

    def kill(self) -> bool:
        """SIGKILL the process group; whether it was still running."""
        if self.process.poll() is not None:
            return False
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        return True

    def outcome(self, timeout: float) -> dict[str, Any]:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return {"status": "HUNG"}
        self._reader.join(timeout=10)
        results = [line for line in self.lines if line.startswith("RESULT ")]
        if not results:
            return {"status": f"EXITED {self.process.returncode}"}
        outcome: dict[str, Any] = json.loads(results[-1].removeprefix("RESULT "))
        return outcome


@contextmanager
def backend_killer(env: ChaosEnvironment, pipeline: str, plan: NightPlan) -> Iterator[list[int]]:
    """Terminate the backend of the night's running CALL once, while the block runs."""
    killed: list[int] = []
    stop = threading.Event()
    prefix = f"{pipeline}/{plan.night.isoformat()}/load_warehouse/%"

    def hunt() -> None:
        with psycopg.connect(env.pg_dsn, autocommit=True) as conn:
            while not stop.is_set() and not killed:
                row = conn.execute(
                    "select redshift_pid from local_data_api.statements where statement_name"
                    " like %s and status = 'STARTED' and redshift_pid is not null",
                    [prefix],
                ).fetchone()
                if row is not None:
                    done = conn.execute("select pg_terminate_backend(%s)", [row[0]]).fetchone()
                    if done is not None and done[0]:
                        killed.append(int(row[0]))
                stop.wait(0.005)

    hunter = threading.Thread(target=hunt, name="backend-killer", daemon=True)
    hunter.start()
    try:
        yield killed
    finally:
        stop.set()
        hunter.join(timeout=10)


def run_one_night(
    env: ChaosEnvironment, report: ChaosReport, pipeline: str, plan: NightPlan
) -> None:
    """Seed the night, arm its faults, invoke until it succeeds; record what fired."""
    seed_night(env.wh, report.seed, plan.index, plan.night)
    env.faults.clear()
    arm(env.faults, plan)
    began = time.monotonic()
    succeeded = False
    kill, concurrent = plan.of_kind("kill9"), plan.of_kind("concurrent")
    with backend_killer(env, pipeline, plan) if plan.of_kind("backend_kill") else _none() as hit:
        if kill is not None:
            report.invocations += 1
            child = Child(env, pipeline, plan)
            child.wait_ready()
            time.sleep(kill.seconds)
            if child.kill():
                report.fired["kill9"] += 1
                report.events.append(f"{plan.night}: kill9 at +{kill.seconds:.2f}s")
        for attempt in range(1, MAX_INVOCATIONS + 1):
            if succeeded or time.monotonic() - began > NIGHT_BOUND_SECONDS:
                break
            report.invocations += 1
            other = None
            if concurrent is not None and attempt == 1:
                report.invocations += 1
                other = Child(env, pipeline, plan)
                other.wait_ready()
                time.sleep(concurrent.seconds / 5)  # the two start within half a second
            outcome = run_night(pipeline, env.endpoint_url, plan.night)
            outcomes = [outcome]
            if other is not None:
                outcomes.append(other.outcome(NIGHT_BOUND_SECONDS))
                report.fired["concurrent"] += 1
            succeeded = any(o["status"] == "SUCCEEDED" for o in outcomes)
            statuses = "/".join(o["status"] for o in outcomes)
            report.events.append(f"{plan.night}: run {attempt} {statuses}")
            report.failed_invocations += sum(o["status"] != "SUCCEEDED" for o in outcomes)
            report.events += [
                f"{plan.night}:   {o.get('error', '')[:160]}"
                for o in outcomes
                if o["status"] != "SUCCEEDED"
            ]
    if hit:
        report.fired["backend_kill"] += 1
    elapsed = time.monotonic() - began
    report.fired.update(env.faults.fired)
    env.faults.clear()
    report.nights += 1
    if elapsed > NIGHT_BOUND_SECONDS:
        report.hangs.append(f"{plan.night} ({elapsed:.0f}s)")
    if succeeded:
        report.nights_succeeded += 1
    else:
        report.failed_nights.append(str(plan.night))


@contextmanager
def _none() -> Iterator[list[int]]:
    yield []


def executions(conn: psycopg.Connection[Any], pipeline: str) -> tuple[int, list[str]]:
    """Named statements of the run that started executing, and the names executed twice."""
    rows = conn.execute(
        "select statement_name, count(*) from local_data_api.statements"
        " where statement_name like %s and parent_id is null and started_at is not null"
        " group by statement_name",
        [f"{pipeline}/%"],
    ).fetchall()
    return sum(int(n) for _, n in rows), sorted(str(name) for name, n in rows if n > 1)


def compare(report: ChaosReport, truth: dict[str, Any], got: dict[str, Any]) -> None:
    for table in truth:
        expected, actual = Counter(truth[table]), Counter(got[table])
        report.lost_rows += sum((expected - actual).values())
        report.extra_rows += sum((actual - expected).values())
    report.duplicate_rows = sum(
        n - 1 for n in Counter((r[0], r[1], r[2]) for r in got["sale_fact"]).values() if n > 1
    ) + sum(n - 1 for n in Counter((r[0], r[5]) for r in got["customer_dim"]).values() if n > 1)
    report.tables_equal = truth == got


def run_chaos(env: ChaosEnvironment, seed: int, plans: list[NightPlan]) -> ChaosReport:
    """The whole run: plan printed, truth loaded, nights under faults, then the verdict."""
    for line in describe(seed, plans):
        env.log(line)
    report = ChaosReport(seed=seed, planned_faults=planned_count(plans))
    started = time.monotonic()
    truth = load_truth(env, seed, plans)
    env.wh.conn.execute(RESET)
    env.wh.etl_clock = START
    pipeline = f"chaos-{seed}-{uuid.uuid4().hex[:8]}"  # a fresh name: nothing to reattach to
    try:
        for plan in plans:
            run_one_night(env, report, pipeline, plan)
            env.log(f"  {plan.night}: " + "; ".join(
                e.split(": ", 1)[1] for e in report.events if e.startswith(f"{plan.night}:")
            ))  # fmt: skip
    finally:
        env.faults.clear()
    compare(report, truth, table_rows(env.wh))
    report.statements_executed, report.duplicate_executions = executions(env.wh.conn, pipeline)
    report.wall_seconds = time.monotonic() - started
    return report
