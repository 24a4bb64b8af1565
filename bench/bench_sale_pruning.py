"""Rows the incremental sale load reads from ext_clean_mystore.store_sale after 30 nights.

Nights 1-29 of sales are staged (in partition order, as the catalog sync loads them; 2% of
each night's sales are 3 days late) and loaded; night 30 is staged and loaded while
PostgreSQL's table statistics count the rows read from the clean sales. "before" runs the
two reads the load made before it pruned on sale_date (the new high-water mark and the new
rows, each over the whole table); "after" is what sp_run_incremental_load reads now. The
goal: proportional to one night (here 9 partitions: the late-sale window and the new night), not to history.

    uv run --locked python -m bench.bench_sale_pruning [--per-night 5000] [--nights 30]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from flows.migrate import LOCAL_PARAMETERS, migrate

from local.stack import LocalStack
from tasks.aws import aws_client
from tasks.redshift_data import RedshiftTarget
from tasks.redshift_data.submit import execute_and_wait

TARGET = RedshiftTarget(database="dev", cluster_identifier="local", db_user="awsuser")

STAGE = """
insert into ext_clean_mystore.store_sale (
    ticket_id, item_id, sale_datetime, quantity, customer_id, store_id, promo_id,
    processing_datetime, etl_processing_datetime, sale_date
)
select night * 1000000 + i, 1, sale_day + interval '12 hours', 1, 'C1', 'S1', 'P1',
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

# The reads of sp_load_sale_fact before it pruned on sale_date.
UNPRUNED = [
    "select max(etl_processing_datetime) from ext_clean_mystore.store_sale",
    "select count(*) from ext_clean_mystore.store_sale as s"
    " where s.etl_processing_datetime > (select start_date from stg_mystore.dw_incremental_dates"
    " where source_table_name = 'store_sale')",
]


def rows_read(conn: psycopg.Connection[Any]) -> int:
    conn.execute("select pg_stat_clear_snapshot()")
    row = conn.execute(
        "select seq_tup_read + coalesce(idx_tup_fetch, 0) from pg_stat_user_tables"
        " where schemaname = 'ext_clean_mystore' and relname = 'store_sale'"
    ).fetchone()
    return int(row[0]) if row else 0


def measured(conn: psycopg.Connection[Any], client: Any, sqls: list[str]) -> int:
    """Rows read by the statements; a statement's counters arrive when its connection ends."""
    before = rows_read(conn)
    for sql in sqls:
        execute_and_wait(client, TARGET, sql)
    read, deadline = 0, time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = rows_read(conn) - before
        if now and now == read:
            break
        read = now
    return read


def run(per_night: int, nights: int, data_dir: Path) -> None:
    with LocalStack.start(data_dir, with_glue=False) as stack:
        os.environ.update(stack.client_env())
        client = aws_client("redshift-data")
        migrate(client, TARGET, parameters=LOCAL_PARAMETERS, log=lambda _: None)
        with psycopg.connect(stack.pg_dsn, autocommit=True) as conn:
            stage = psycopg.ClientCursor(conn)
            stage.execute(STAGE, {"first": 1, "last": nights - 1, "per_night": per_night})
            execute_and_wait(client, TARGET, "call stg_mystore.sp_run_incremental_load()")
            stage.execute(STAGE, {"first": nights, "last": nights, "per_night": per_night})
            conn.execute("analyze ext_clean_mystore.store_sale")
            history = nights * per_night
            before = measured(conn, client, UNPRUNED)
            after = measured(conn, client, ["call stg_mystore.sp_run_incremental_load()"])
    print(f"ext_clean_mystore.store_sale after {nights} nights: {history:,} rows")
    print(f"rows read by night {nights}'s sale load, before pruning: {before:,}")
    print(f"rows read by night {nights}'s sale load, after pruning:  {after:,}")
    print(f"one night's sales: {per_night:,}; after / one night = {after / per_night:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-night", type=int, default=5000)
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--data-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args()
    if args.data_dir:
        run(args.per_night, args.nights, args.data_dir)
        return
    with tempfile.TemporaryDirectory(prefix="bench-pruning-") as tmp:
        run(args.per_night, args.nights, Path(tmp))


if __name__ == "__main__":
    main()
