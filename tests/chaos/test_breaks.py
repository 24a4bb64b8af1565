"""Replays of issue 15's breaks that no other test covered (see README.md for the rest)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import pytest

from local.stack import LocalStack
from tasks.redshift_data.errors import StatementFailedError
from tests.chaos.machinery import executions
from tests.chaos.night_flow import run_night
from tests.conftest import PrefectApi
from tests.sql.staging import Warehouse

pytestmark = pytest.mark.slow  # a night through Prefect

LOAD = "call stg_mystore.sp_run_incremental_load()"


def test_a_poison_pill_sale_fails_the_load_naming_the_row(wh: Warehouse) -> None:
    """Break 5: a sale dated 9999-12-31 that reached the clean table failed every night
    with "date range ... is longer than 100000 days", naming no row."""
    wh.customers({"customer_id": "C1", "at": datetime(2026, 3, 1)})
    wh.addresses({"address_id": "A1", "at": datetime(2026, 3, 1)})
    wh.sales(
        {"ticket_id": 1, "at": datetime(2026, 3, 1, 12)},
        {"ticket_id": 777, "item_id": 4, "at": datetime(9999, 12, 31, 23)},
    )
    before = wh.rows("select count(*) from dw_mystore.sale_fact")
    with pytest.raises(StatementFailedError) as failed:
        wh.call(LOAD)
    message = str(failed.value)
    assert "latest sale ticket_id 777 item_id 4 at 9999-12-31 23:00:00" in message
    assert "earliest sale ticket_id 1 item_id 1 at 2026-03-01 12:00:00" in message
    assert wh.rows("select count(*) from dw_mystore.sale_fact") == before


def test_four_throttled_reattach_lookups_do_not_fail_the_night(
    migrated: LocalStack, wh: Warehouse, pg_conn: Any, prefect_settings: PrefectApi
) -> None:
    """Break 9: four throttled ListStatements calls (the reattach lookup) failed the night."""
    wh.customers({"customer_id": "C1", "at": datetime(2026, 3, 1)})
    wh.addresses({"address_id": "A1", "at": datetime(2026, 3, 1)})
    wh.sales({"ticket_id": 1, "at": datetime(2026, 3, 1, 12)})
    pipeline = f"chaos-throttle-{uuid.uuid4().hex[:8]}"
    faults = migrated.endpoint.faults
    faults.clear()
    faults.throttle("ListStatements", 4)
    try:
        outcome = run_night(pipeline, migrated.endpoint_url, date(2026, 3, 1))
        fired = faults.fired["throttle"]
    finally:
        faults.clear()
    assert outcome["status"] == "SUCCEEDED", outcome
    assert fired == 4
    executed, twice = executions(pg_conn, pipeline)
    assert (executed, twice) == (4, [])  # the load and three checks, once each
    assert wh.rows("select count(*) from dw_mystore.sale_fact") == [(1,)]
