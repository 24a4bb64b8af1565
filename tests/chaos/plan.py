"""The seeded fault plan and the seeded nights' data of a chaos run (pure, replayable).

A seed fixes both: which faults each night gets (kinds, operations, counts, kill points)
and which clean rows each night adds. The plan is printed at the start of a run, so a
failure is replayed with the same ``--seed`` (timings differ; the plan does not).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from tests.sql.staging import Warehouse

# Faults the local endpoint injects (local/endpoint.py ``Faults``), per Data API operation
# the warehouse part of a night calls.
ENDPOINT_KINDS: dict[str, int] = {  # kind -> weight
    "throttle": 3,
    "drop_after": 3,
    "server_error": 2,
    "server_error_after": 2,
    "latency": 2,
}
OPERATIONS = ("ExecuteStatement", "DescribeStatement", "ListStatements", "GetStatementResult")
# Faults around the orchestrator and the warehouse, at most one of each per night.
PROCESS_KINDS: dict[str, float] = {  # kind -> chance per night
    "kill9": 0.4,  # SIGKILL of a flow process at a random point
    "concurrent": 0.35,  # a second invocation of the same night, in another process
    "backend_kill": 0.25,  # pg_terminate_backend of the running CALL
}
FIRST_NIGHT = date(2026, 3, 1)


@dataclass(frozen=True)
class Fault:
    kind: str
    operation: str | None = None  # endpoint faults only
    times: int = 1
    seconds: float = 0.0  # latency: the delay; kill9 / concurrent: when, after start-up

    def __str__(self) -> str:
        if self.kind == "latency":
            return f"latency {self.operation} {self.seconds:.2f}s x{self.times}"
        if self.operation is not None:
            return f"{self.kind} {self.operation} x{self.times}"
        if self.kind in ("kill9", "concurrent"):
            return f"{self.kind} at +{self.seconds:.2f}s"
        return self.kind


@dataclass(frozen=True)
class NightPlan:
    index: int
    night: date
    faults: tuple[Fault, ...]

    def of_kind(self, kind: str) -> Fault | None:
        return next((f for f in self.faults if f.kind == kind), None)

    def endpoint_faults(self) -> list[Fault]:
        return [f for f in self.faults if f.operation is not None]


def plan_faults(seed: int, nights: int, faults: int) -> list[NightPlan]:
    """Spread ``faults`` planned faults over ``nights`` nights (an endpoint fault of
    ``times`` n counts n; faults of the same kind and operation in a night are merged)."""
    if nights < 1 or faults < 0:
        raise ValueError(f"nights must be >= 1 and faults >= 0; got {nights} and {faults}")
    rng = random.Random(seed)
    plans = []
    for index in range(nights):
        budget = faults // nights + (1 if index < faults % nights else 0)
        chosen: list[Fault] = []
        for kind, chance in PROCESS_KINDS.items():
            if budget > 0 and rng.random() < chance:
                chosen.append(Fault(kind, seconds=round(rng.uniform(0.0, 2.5), 2)))
                budget -= 1
        merged: Counter[tuple[str, str]] = Counter()
        delays: dict[str, float] = {}
        while budget > 0:
            kind = rng.choices(list(ENDPOINT_KINDS), weights=list(ENDPOINT_KINDS.values()))[0]
            operation = rng.choice(OPERATIONS)
            times = min(budget, rng.randint(1, 2))
            merged[(kind, operation)] += times
            if kind == "latency":
                delays.setdefault(operation, round(rng.uniform(0.1, 0.6), 2))
            budget -= times
        chosen += [
            Fault(kind, operation, times, delays.get(operation, 0.0) if kind == "latency" else 0)
            for (kind, operation), times in sorted(merged.items())
        ]
        plans.append(NightPlan(index, FIRST_NIGHT + timedelta(days=index), tuple(chosen)))
    return plans


def planned_count(plans: list[NightPlan]) -> int:
    return sum(f.times for p in plans for f in p.faults)


def describe(seed: int, plans: list[NightPlan]) -> list[str]:
    """The lines printed at the start of a run: enough to replay it."""
    lines = [f"chaos seed {seed}: {len(plans)} nights, {planned_count(plans)} planned faults"]
    lines += [
        f"  {p.night}: " + (", ".join(str(f) for f in p.faults) or "no faults") for p in plans
    ]
    return lines


def customers_of(index: int) -> list[str]:
    return [f"C{index:03d}{k}" for k in range(3)]


def seed_night(wh: Warehouse, seed: int, index: int, night: date) -> None:
    """The clean rows a night adds, as a clean run would have upserted them: three new
    customers with addresses, one moved address (SCD2) and one renamed customer (SCD1) of
    an earlier night, and 10-25 sales of known customers on that day."""
    rng = random.Random(f"{seed}/{index}")
    day = datetime.combine(night, time(0))
    new = customers_of(index)
    wh.addresses(*({"address_id": f"A{c[1:]}", "at": day} for c in new))
    wh.customers(*({"customer_id": c, "at": day, "address_id": f"A{c[1:]}"} for c in new))
    if index > 0:
        moved = rng.choice([c for i in range(index) for c in customers_of(i)])
        wh.addresses({"address_id": f"A{moved[1:]}", "at": day, "city": f"City{index}"})
        renamed = rng.choice([c for i in range(index) for c in customers_of(i)])
        wh.customers(
            {
                "customer_id": renamed,
                "at": day + timedelta(minutes=1),
                "address_id": f"A{renamed[1:]}",
                "last_name": f"Name{index}",
            }
        )
    known = [c for i in range(index + 1) for c in customers_of(i)]
    wh.sales(
        *(
            {
                "ticket_id": index * 1000 + k,
                "item_id": 1 + k % 3,
                "at": day + timedelta(hours=1, minutes=rng.randint(0, 1300)),
                "customer_id": rng.choice(known),
                "quantity": rng.randint(1, 5),
            }
            for k in range(rng.randint(10, 25))
        )
    )
