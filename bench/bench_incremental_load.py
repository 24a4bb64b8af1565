"""Wall time of stg_mystore.sp_run_incremental_load() on the embedded warehouse.

Night 1 loads N customers (each with an address) and M sales into an empty warehouse;
night 2 loads a share of changed customers (half attribute changes, half moves to a new
address) plus one more day of sales. The clean tables are staged directly in
ext_clean_mystore with generate_series, so only the procedure is timed, called through
the local Data API as the nightly flow calls it.

    uv run --locked python -m bench.bench_incremental_load [--customers 100000] [--sales 1000000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from local.stack import LocalStack
from local.warehouse.dialect import LOCAL_MIGRATION_PARAMETERS
from local.warehouse.redshift_compat import preflight
from migrations import migrate
from tasks.aws import aws_client
from tasks.redshift_data import RedshiftTarget
from tasks.redshift_data.submit import execute_and_wait

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

TARGET = RedshiftTarget(database="dev", cluster_identifier="local", db_user="awsuser")
DAYS = 30

RESET = """
truncate ext_clean_mystore.store_customer, ext_clean_mystore.store_customer_address,
    ext_clean_mystore.store_sale, stg_mystore.wrk_customer_dim, stg_mystore.wrk_sale_fact,
    dw_mystore.sale_fact;
delete from dw_mystore.customer_dim where customer_key <> -1;
update stg_mystore.dw_incremental_dates set start_date = '1900-01-01';
"""

NIGHT_1 = """
insert into ext_clean_mystore.store_customer_address
select 'A' || lpad(i::text, 9, '0'), timestamp '2026-01-01' + i * interval '1 second',
    i || ' Main St', 'City ' || (i %% 500), lpad((i %% 99999)::text, 5, '0'), 'County ' || (i %% 90),
    'S' || (i %% 50), 'United States', -5, 'condo', now(), timestamp '2026-02-01 01:00',
    date '2026-01-01'
from generate_series(1, %(customers)s) as i;

insert into ext_clean_mystore.store_customer
select 'C' || lpad(i::text, 9, '0'), timestamp '2026-01-01' + i * interval '1 second',
    'First' || (i %% 1000), 'Last' || (i %% 5000), 'Mx.', (array['M', 'F', null])[i %% 3 + 1],
    date '1950-01-01' + (i %% 20000), 'US', 'c' || i || '@example.com',
    (array['S', 'M', 'D', 'W', 'U'])[i %% 5 + 1], 'College', (i %% 20) * 10000,
    (i %% 20 + 1) * 10000, 500 * (i %% 20), '1001-5000', 'Good', i %% 4,
    'A' || lpad(i::text, 9, '0'), now(), timestamp '2026-02-01 01:00', date '2026-01-01'
from generate_series(1, %(customers)s) as i;

insert into ext_clean_mystore.store_sale
select 1000000 + i, 1 + i %% 7,
    timestamp '2026-01-02' + (i %% %(days)s) * interval '1 day' + (i %% 86400) * interval '1 second',
    1 + i %% 5, 1.10, 2.20, 2.00, 0.10, 4.00, 2.20, 4.40, 0.30, 0, 4.00, 4.30, 1.80,
    'C' || lpad((1 + i %% %(customers)s)::text, 9, '0'), 'S' || (i %% 40), 'P' || (i %% 10),
    now(), timestamp '2026-02-01 01:00', date '2026-01-02' + (i %% %(days)s)
from generate_series(1, %(sales)s) as i;
"""

# Fresh statistics, as the local catalog sync should leave them (Spectrum has its own): with
# none, PostgreSQL guesses a handful of rows and picks nested loops over 10^10 row pairs.
ANALYZE = """
analyze ext_clean_mystore.store_customer;
analyze ext_clean_mystore.store_customer_address;
analyze ext_clean_mystore.store_sale;
"""

# Night 2: every 20th customer changes (with --changed-share 0.05); every other one of them
# moves to a new address, the rest change an attribute. One more day of sales arrives.
NIGHT_2 = """
insert into ext_clean_mystore.store_customer_address
select 'B' || lpad(i::text, 9, '0'), timestamp '2026-02-01 12:00', i || ' New St', 'Newtown',
    '00001', 'County 1', 'S1', 'United States', -5, 'apartment', now(),
    timestamp '2026-02-02 01:00', date '2026-02-01'
from generate_series(1, %(customers)s) as i
where i %% %(every)s = 0 and i / %(every)s %% 2 = 1;

update ext_clean_mystore.store_customer
set customer_datetime = timestamp '2026-02-01 12:00',
    address_id = case when substr(customer_id, 2)::int / %(every)s %% 2 = 1
        then 'B' || substr(customer_id, 2) else address_id end,
    credit_rating = case when substr(customer_id, 2)::int / %(every)s %% 2 = 0
        then 'High Risk' else credit_rating end,
    etl_processing_datetime = timestamp '2026-02-02 01:00'
where substr(customer_id, 2)::int %% %(every)s = 0;

insert into ext_clean_mystore.store_sale
select 5000000 + i, 1, timestamp '2026-02-01 13:00' + (i %% 36000) * interval '1 second', 1,
    1, 2, 2, 0, 2, 1, 2, 0.1, 0, 2, 2.1, 1,
    'C' || lpad((1 + i %% %(customers)s)::text, 9, '0'), 'S1', 'P1', now(),
    timestamp '2026-02-02 01:00', date '2026-02-01'
from generate_series(1, %(day_sales)s) as i;
"""


def run(customers: int, sales: int, changed_share: float, data_dir: Path) -> None:
    with LocalStack.start(data_dir, with_glue=False) as stack:
        os.environ.update(stack.client_env())
        client = aws_client("redshift-data")
        migrate(
            client,
            TARGET,
            parameters=LOCAL_MIGRATION_PARAMETERS,
            check=preflight,
            log=lambda _: None,
        )
        every = max(1, round(1 / changed_share))
        values = {
            "customers": customers,
            "sales": sales,
            "days": DAYS,
            "every": every,
            "day_sales": sales // DAYS,
        }
        with psycopg.connect(stack.pg_dsn, autocommit=True) as conn:
            conn.execute(RESET)
            started = time.perf_counter()
            psycopg.ClientCursor(conn).execute(NIGHT_1, values)
            conn.execute(ANALYZE)
            print(f"staged night 1 in {time.perf_counter() - started:.1f} s")
            night_1 = _night(client)
            psycopg.ClientCursor(conn).execute(NIGHT_2, values)
            conn.execute(ANALYZE)
            changed = conn.execute(
                "select count(*) from ext_clean_mystore.store_customer"
                " where etl_processing_datetime = timestamp '2026-02-02 01:00'"
            ).fetchone()
            night_2 = _night(client)
            (versions, current), (facts,) = (
                conn.execute(
                    "select count(*), count(*) filter (where scd_current_flag = 'Y')"
                    " from dw_mystore.customer_dim where customer_key <> -1"
                ).fetchone()
                or (0, 0),
                conn.execute("select count(*) from dw_mystore.sale_fact").fetchone() or (0,),
            )
    print(f"night 1: {customers:,} new customers, {sales:,} sales: {night_1:.1f} s")
    print(
        f"night 2: {changed[0] if changed else 0:,} changed customers"
        f" ({changed_share:.0%}, half moved), {sales // DAYS:,} new sales: {night_2:.1f} s"
    )
    print(f"after: {versions:,} customer versions ({current:,} current), {facts:,} sale facts")


def _night(client: RedshiftDataAPIServiceClient) -> float:
    started = time.perf_counter()
    execute_and_wait(client, TARGET, "call stg_mystore.sp_run_incremental_load()")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--sales", type=int, default=1_000_000)
    parser.add_argument("--changed-share", type=float, default=0.05)
    parser.add_argument("--data-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args()
    if args.data_dir:
        run(args.customers, args.sales, args.changed_share, args.data_dir)
        return
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        run(args.customers, args.sales, args.changed_share, Path(tmp))


if __name__ == "__main__":
    main()
