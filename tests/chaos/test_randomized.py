"""The randomized chaos run: seeded faults over several nights, then the truth, once.

Replay a failure with the seed it printed: ``CHAOS_SEED=<seed> uv run --locked pytest
tests/chaos -k randomized -s``. ``bench/bench_chaos.py`` runs the same machinery longer.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from local.stack import LocalStack
from tests.chaos.machinery import ChaosEnvironment, run_chaos
from tests.chaos.plan import plan_faults
from tests.conftest import PrefectApi
from tests.sql.staging import Warehouse

pytestmark = pytest.mark.slow  # a few nights through Prefect, with child processes

SEED = int(os.environ.get("CHAOS_SEED", "1500"))
NIGHTS = 4
FAULTS = 28


def test_faulty_nights_end_as_the_truth_with_nothing_executed_twice(
    migrated: LocalStack, wh: Warehouse, pg_conn: Any, prefect_settings: PrefectApi
) -> None:
    env = ChaosEnvironment(
        faults=migrated.endpoint.faults,
        endpoint_url=migrated.endpoint_url,
        wh=wh,
        pg_dsn=migrated.pg_dsn,
        child_env=prefect_settings.env(),
    )
    plans = plan_faults(SEED, NIGHTS, FAULTS)
    report = run_chaos(env, SEED, plans)
    print("\n".join(report.lines()))
    assert report.failed_nights == [] and report.hangs == [], report.events
    assert report.tables_equal, (report.lost_rows, report.extra_rows, report.events)
    assert (report.lost_rows, report.extra_rows, report.duplicate_rows) == (0, 0, 0)
    assert report.duplicate_executions == []
    # the run was not vacuous: faults of several kinds hit it, and the nights loaded rows
    assert report.faults_injected >= FAULTS // 2, report.fired
    assert len(report.fired) >= 4, report.fired
    assert report.statements_executed >= 4 * NIGHTS
    assert wh.rows("select count(*) from dw_mystore.sale_fact")[0][0] > 0
