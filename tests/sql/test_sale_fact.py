"""sp_load_sale_fact and the run procedures: facts keyed to the right customer version."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tasks.redshift_data import StatementFailedError
from tests.sql.staging import START, Warehouse

NIGHTLY = "call stg_mystore.sp_run_incremental_load()"


def _customer_keys(wh: Warehouse, customer_id: str) -> list[int]:
    return [v["customer_key"] for v in wh.dim(customer_id)]


def test_sales_map_to_the_version_valid_at_sale_time_or_minus_one(wh: Warehouse) -> None:
    moved = START + timedelta(days=2)
    wh.addresses({"address_id": "A1"}, {"address_id": "A2"})
    wh.customers({"customer_id": "C1", "address_id": "A1"})
    wh.call(NIGHTLY)
    wh.customers({"customer_id": "C1", "at": moved, "address_id": "A2"})
    wh.sales(
        {"ticket_id": 1, "at": moved - timedelta(seconds=1)},
        {"ticket_id": 2, "at": moved},
        {"ticket_id": 3, "at": moved + timedelta(days=1)},
        {"ticket_id": 4, "at": START - timedelta(days=1)},  # before the customer's first version
        {"ticket_id": 5, "at": moved, "customer_id": "C-unknown"},
        {"ticket_id": 6, "at": moved, "customer_id": None},
    )
    wh.call(NIGHTLY)

    first, second = _customer_keys(wh, "C1")
    assert wh.facts() == {
        (1, 1): first,
        (2, 1): second,
        (3, 1): second,
        (4, 1): first,
        (5, 1): -1,
        (6, 1): -1,
    }


def test_fact_keys_point_at_the_calendar_and_the_clock(wh: Warehouse) -> None:
    at = datetime(2026, 3, 7, 13, 45, 30)
    wh.customers({"customer_id": "C1"})
    wh.sales({"ticket_id": 1, "at": at})
    wh.call(NIGHTLY)

    [(date_key, time_key, sold_date)] = wh.rows(
        "select sold_date_key, sold_time_key, sold_date from dw_mystore.sale_fact"
    )
    assert (date_key, sold_date, time_key) == (at.date(), at.date(), 13 * 3600 + 45 * 60 + 30)
    [(day_name, weekend)] = wh.rows(
        "select day_name, weekend_flag from dw_mystore.date_dim where date_key = %s", at.date()
    )
    assert (day_name, weekend) == ("Saturday", "Y")
    [(count, value, meal)] = wh.rows(
        "select count(*), max(time_value), max(meal_time) filter (where time_key = %s)"
        " from dw_mystore.time_dim",
        time_key,
    )
    assert (count, value, meal) == (86400, "23:59:59", "lunch")


def test_high_water_marks_advance_and_a_rerun_loads_nothing_twice(wh: Warehouse) -> None:
    wh.customers({"customer_id": "C1"})
    wh.addresses({"address_id": "A1"})
    wh.sales({"ticket_id": 1, "at": START}, {"ticket_id": 2, "at": START, "item_id": 7})
    wh.call(NIGHTLY)

    marks = wh.marks()
    assert marks == {
        "store_customer": wh.etl_clock - timedelta(minutes=2),
        "store_customer_address": wh.etl_clock - timedelta(minutes=1),
        "store_sale": wh.etl_clock,
    }
    after_first = wh.snapshot()
    wh.call(NIGHTLY)
    assert wh.snapshot() == after_first

    # The same sale re-sent (a later clean commit) replaces its fact instead of duplicating it.
    wh.sales({"ticket_id": 1, "at": START, "quantity": 5})
    wh.call(NIGHTLY)
    assert wh.rows(
        "select ticket_id, item_id, quantity from dw_mystore.sale_fact order by 1, 2"
    ) == [
        (1, 1, 5),
        (2, 7, 2),
    ]
    assert wh.marks()["store_sale"] == wh.etl_clock


def test_sales_committed_before_the_mark_are_not_loaded_again(wh: Warehouse) -> None:
    wh.customers({"customer_id": "C1"})
    wh.sales({"ticket_id": 1, "at": START})
    wh.call(NIGHTLY)
    wh.conn.execute("delete from dw_mystore.sale_fact")  # proof: a reload would bring it back

    wh.call(NIGHTLY)

    assert wh.facts() == {}


def test_history_load_backfills_exactly_the_date_range(wh: Warehouse) -> None:
    wh.customers({"customer_id": "C1"})
    wh.call(NIGHTLY)
    marks = wh.marks()
    days = [date(2025, 12, d) for d in range(1, 6)]
    for ticket, day in enumerate(days, start=1):
        at = datetime.combine(day, datetime.min.time()) + timedelta(hours=10)
        wh.conn.execute(
            "insert into stg_mystore.store_sale (ticket_id, item_id, sale_datetime, quantity,"
            " customer_id, store_id, promo_id, sale_date) values (%s, 1, %s, 1, 'C1', 'S1', 'P1', %s)",
            [ticket, at, day],
        )

    wh.call(
        "call stg_mystore.sp_run_history_load(cast(:start as date), cast(:end as date))",
        {"start": "2025-12-02", "end": "2025-12-03"},
    )

    assert sorted(wh.facts()) == [(2, 1), (3, 1)]
    # History sales before the customer's first version map to that first version.
    assert set(wh.facts().values()) == {wh.dim("C1")[0]["customer_key"]}
    assert wh.marks() == marks  # a history load leaves the incremental marks alone

    wh.call(
        "call stg_mystore.sp_run_history_load(cast(:start as date), cast(:end as date))",
        {"start": "2025-12-01", "end": "2025-12-05"},
    )
    assert sorted(wh.facts()) == [(t, 1) for t in range(1, 6)]


def test_a_history_load_of_a_range_with_no_staged_sales_fails_and_loads_nothing(
    wh: Warehouse,
) -> None:
    """A backfill of a range the staging table has no sales for (a wrong range, or a source
    never staged) fails naming the range, and the customers it loaded first roll back."""
    wh.customers({"customer_id": "C1"})
    wh.sales({"ticket_id": 1, "at": datetime(2025, 12, 1, 9)})
    wh.call("call stg_mystore.sp_stage_store_sale('2025-12-01', '2025-12-01')")
    before = wh.snapshot()

    with pytest.raises(
        StatementFailedError,
        match=r"HISTORY load of 0001-01-01 to 0001-01-02: stg_mystore.store_sale holds no"
        r" sales in that range, so there is nothing to load; stage the range first",
    ):
        wh.call("call stg_mystore.sp_run_history_load('0001-01-01', '0001-01-02')")

    assert wh.snapshot() == before
    assert wh.dim("C1") == []  # sp_load_customer_dim ran first, in the same transaction
    assert wh.facts() == {}


def test_a_failing_load_leaves_no_half_loaded_state(wh: Warehouse) -> None:
    wh.customers({"customer_id": "C1"})
    wh.sales({"ticket_id": 1, "at": START})
    wh.call(NIGHTLY)
    before = wh.snapshot()

    # The customer part would load; the sale part fails (store_id wider than the column).
    wh.customers(
        {"customer_id": "C2"},
        {"customer_id": "C1", "at": START + timedelta(days=1), "last_name": "X"},
    )
    wh.sales({"ticket_id": 2, "at": START, "store_id": "S" * 40})
    with pytest.raises(StatementFailedError, match="too long"):
        wh.call(NIGHTLY)

    assert wh.snapshot() == before
    assert wh.dim("C2") == []


def test_history_can_be_staged_from_the_clean_table_on_any_target(wh: Warehouse) -> None:
    wh.customers({"customer_id": "C1"})
    wh.sales(
        {"ticket_id": 1, "at": datetime(2025, 12, 1, 9)},
        {"ticket_id": 2, "at": datetime(2025, 12, 2, 9)},
        {"ticket_id": 3, "at": datetime(2025, 12, 3, 9)},
    )
    dates = {"start": "2025-12-02", "end": "2025-12-03"}
    wh.call("call stg_mystore.sp_stage_store_sale(cast(:start as date), cast(:end as date))", dates)
    wh.call(
        "call stg_mystore.sp_stage_store_sale(cast(:start as date), cast(:end as date))", dates
    )  # a rerun replaces the range instead of doubling it
    wh.call("call stg_mystore.sp_run_history_load(cast(:start as date), cast(:end as date))", dates)

    assert sorted(wh.facts()) == [(2, 1), (3, 1)]
    assert wh.rows("select count(*) from stg_mystore.store_sale") == [(2,)]


# One clean commit per night: each night's sales (sale_date = that night, some a few days
# late) committed at 01:00 the next day, in partition order as the catalog sync loads them.
_NIGHTS_OF_SALES = """
insert into ext_clean_mystore.store_sale (
    ticket_id, item_id, sale_datetime, quantity, customer_id, store_id, promo_id,
    processing_datetime, etl_processing_datetime, sale_date
)
select night * 100000 + i, 1, sale_day + interval '12 hours', 1, 'C1', 'S1', 'P1',
    commit_at, commit_at, sale_day
from generate_series(%(first)s, %(last)s) as night
cross join lateral (
    select cast(date '2026-01-01' + night as timestamp) + interval '25 hours' as commit_at
) as c
cross join generate_series(1, %(per_night)s) as i
cross join lateral (
    select date '2026-01-01' + night - case when i %% 50 = 0 then 3 else 0 end as sale_day
) as d
order by sale_day
"""


def rows_read_from_clean_sales(conn: psycopg.Connection[Any]) -> int:
    """Rows PostgreSQL read from ext_clean_mystore.store_sale so far (scans and index fetches)."""
    conn.execute("select pg_stat_clear_snapshot()")
    row = conn.execute(
        "select seq_tup_read + coalesce(idx_tup_fetch, 0) from pg_stat_user_tables"
        " where schemaname = 'ext_clean_mystore' and relname = 'store_sale'"
    ).fetchone()
    return int(row[0]) if row else 0


def read_by(conn: psycopg.Connection[Any], run: Callable[[], None]) -> int:
    """Rows ``run`` read from the clean sales; a statement's counters arrive when it ends."""
    before = rows_read_from_clean_sales(conn)
    run()
    deadline, read = time.monotonic() + 10, 0
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = rows_read_from_clean_sales(conn) - before
        if now and now == read:
            return read
        read = now
    return read


def test_the_incremental_load_reads_recent_sale_date_partitions_only(wh: Warehouse) -> None:
    """After 30 nights, a night reads about a week of partitions (the late-sale window),
    not the whole history: Spectrum prunes on sale_date, locally its index does."""
    per_night = 400
    wh.customers({"customer_id": "C1", "at": datetime(2025, 1, 1)})
    stage = psycopg.ClientCursor(wh.conn)
    stage.execute(_NIGHTS_OF_SALES, {"first": 1, "last": 30, "per_night": per_night})
    wh.call(NIGHTLY)
    stage.execute(_NIGHTS_OF_SALES, {"first": 31, "last": 31, "per_night": per_night})
    wh.conn.execute("analyze ext_clean_mystore.store_sale")

    read = read_by(wh.conn, lambda: wh.call(NIGHTLY))

    assert wh.rows("select count(*) from dw_mystore.sale_fact") == [(31 * per_night,)]
    history = 31 * per_night
    # Two reads (the new mark, then the new rows), each of the partitions from the newest
    # loaded sale's day minus 7 days (8 days loaded, 1 new); without pruning each read
    # scans the whole history.
    assert 0 < read <= 2 * 9 * per_night, (read, history)
    assert read < history


def test_pruning_follows_business_dates_so_a_replayed_night_is_loaded(wh: Warehouse) -> None:
    """A night processed long after its sale dates (a replay, a backfill) is still read."""
    wh.customers({"customer_id": "C1"})
    wh.sales({"ticket_id": 1, "at": START})
    wh.call(NIGHTLY)
    a_year_later = START + timedelta(days=365)
    wh.sales(
        {"ticket_id": 2, "at": START + timedelta(days=1), "etl_processing_datetime": a_year_later}
    )
    wh.call(NIGHTLY)
    assert set(wh.facts()) == {(1, 1), (2, 1)}
