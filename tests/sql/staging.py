"""Helpers of the procedure tests: stage clean rows, call procedures, read results.

Procedures are called through the Data API (the local endpoint), the path production
takes; test data is staged and checked with psycopg where that is simpler.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

from glue.contract import STORE_CUSTOMER, STORE_CUSTOMER_ADDRESS, STORE_SALE, TableContract
from tasks.redshift_data import RedshiftTarget
from tasks.redshift_data.results import get_rows
from tasks.redshift_data.submit import execute_and_wait

TARGET = RedshiftTarget(database="dev", cluster_identifier="local", db_user="awsuser")
START = datetime(2026, 1, 1)

RESET = """
truncate ext_clean_mystore.store_customer, ext_clean_mystore.store_customer_address,
    ext_clean_mystore.store_sale, stg_mystore.store_sale, stg_mystore.wrk_customer_dim,
    stg_mystore.wrk_sale_fact, dw_mystore.sale_fact, dw_mystore.date_dim;
delete from dw_mystore.customer_dim where customer_key <> -1;
delete from stg_mystore.dw_incremental_dates
where source_table_name not in ('store_customer', 'store_customer_address', 'store_sale');
update stg_mystore.dw_incremental_dates set start_date = '1900-01-01';
"""

# What two loads of the same nights must agree on (keys and load timestamps left out: they
# differ between two loads of the same data by design). Used by the Step Functions parity
# tests and the chaos suite.
CHECKSUM_SQL = {
    "customer_dim": (
        "select customer_id, gender, marital_status, street, city, scd_start_date,"
        " scd_end_date, scd_current_flag from dw_mystore.customer_dim"
        " where customer_key <> -1 order by customer_id, scd_start_date"
    ),
    "sale_fact": (
        "select f.ticket_id, f.item_id, f.sold_date, c.customer_id, f.quantity, f.net_paid"
        " from dw_mystore.sale_fact f join dw_mystore.customer_dim c"
        " on c.customer_key = f.customer_key order by f.ticket_id, f.item_id"
    ),
    "marks": (
        "select source_table_name, start_date from stg_mystore.dw_incremental_dates"
        " order by source_table_name"
    ),
}


@dataclass
class Warehouse:
    """Stage clean rows, call procedures through the Data API, read results back."""

    client: RedshiftDataAPIServiceClient
    conn: psycopg.Connection[Any]
    etl_clock: datetime = START

    def call(self, sql: str, parameters: Mapping[str, object] | None = None) -> None:
        execute_and_wait(self.client, TARGET, sql, parameters=parameters)

    def query(self, sql: str, parameters: Mapping[str, object] | None = None) -> list[dict]:
        result = execute_and_wait(self.client, TARGET, sql, parameters=parameters)
        return get_rows(self.client, result.statement_id)

    def rows(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, args).fetchall()

    def next_etl(self) -> datetime:
        """A later etl_processing_datetime for each staged batch, as each clean commit has."""
        self.etl_clock += timedelta(minutes=1)
        return self.etl_clock

    def _upsert(self, table: TableContract, rows: list[dict[str, Any]]) -> None:
        """Replace rows by key, as the Hudi upsert does; missing columns are NULL."""
        etl = self.next_etl()
        columns = table.column_names
        for row in rows:
            values = {**row, "etl_processing_datetime": row.get("etl_processing_datetime", etl)}
            ordering = values[table.ordering]
            if table.partition not in values:  # given when the ordering field is NULL
                values[table.partition] = ordering.date()
            keys = " and ".join(f"{k} = %s" for k in table.key)
            self.conn.execute(
                f"delete from ext_clean_mystore.{table.name} where {keys}",
                [values[k] for k in table.key],
            )
            placeholders = ", ".join(["%s"] * len(columns))
            self.conn.execute(
                f"insert into ext_clean_mystore.{table.name} ({', '.join(columns)})"
                f" values ({placeholders})",
                [values.get(c) for c in columns],
            )

    def customers(self, *rows: dict[str, Any]) -> None:
        self._upsert(STORE_CUSTOMER, [customer(**r) for r in rows])

    def addresses(self, *rows: dict[str, Any]) -> None:
        self._upsert(STORE_CUSTOMER_ADDRESS, [address(**r) for r in rows])

    def sales(self, *rows: dict[str, Any]) -> None:
        self._upsert(STORE_SALE, [sale(**r) for r in rows])

    def dim(self, customer_id: str) -> list[dict[str, Any]]:
        """All versions of a customer, oldest first."""
        cursor = self.conn.cursor(row_factory=psycopg.rows.dict_row)
        return cursor.execute(
            "select * from dw_mystore.customer_dim where customer_id = %s order by scd_start_date",
            [customer_id],
        ).fetchall()

    def facts(self) -> dict[tuple[int, int], int]:
        """(ticket_id, item_id) -> customer_key of every fact row."""
        return {
            (t, i): k
            for t, i, k in self.rows(
                "select ticket_id, item_id, customer_key from dw_mystore.sale_fact"
            )
        }

    def marks(self) -> dict[str, datetime]:
        rows = self.rows(
            "select source_table_name, start_date from stg_mystore.dw_incremental_dates"
        )
        return {str(name): mark for name, mark in rows}

    def snapshot(self) -> tuple[list[tuple[Any, ...]], ...]:
        """Everything a load can change, to prove that a load changed nothing."""
        return tuple(
            self.rows(sql)
            for sql in (
                "select * from dw_mystore.customer_dim order by customer_key",
                "select * from dw_mystore.sale_fact order by ticket_id, item_id",
                "select * from stg_mystore.dw_incremental_dates order by source_table_name",
            )
        )


def customer(customer_id: str = "C1", at: datetime = START, **attrs: Any) -> dict[str, Any]:
    row = {
        "customer_id": customer_id,
        "customer_datetime": at,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "salutation": "Ms.",
        "gender": "F",
        "birth_date": date(1990, 12, 10),
        "birth_country": "UK",
        "email_address": "ada@example.com",
        "marital_status": "S",
        "education_status": "Advanced Degree",
        "lower_bound": 10001,
        "upper_bound": 20000,
        "purchase_estimate": 5000,
        "buy_potential": "1001-5000",
        "credit_rating": "Good",
        "vehicle_count": 1,
        "address_id": "A1",
        "processing_datetime": at,
    }
    return row | attrs


def address(address_id: str = "A1", at: datetime = START, **attrs: Any) -> dict[str, Any]:
    row = {
        "address_id": address_id,
        "address_datetime": at,
        "street": "1 Main St",
        "city": "Springfield",
        "zip": "12345",
        "county": "Sangamon",
        "state": "IL",
        "country": "United States",
        "gmt_offset": -6,
        "location_type": "condo",
        "processing_datetime": at,
    }
    return row | attrs


def sale(ticket_id: int, at: datetime, customer_id: str | None = "C1", **attrs: Any) -> dict:
    row = {
        "ticket_id": ticket_id,
        "item_id": attrs.pop("item_id", 1),
        "sale_datetime": at,
        "quantity": 2,
        "sales_price": 9.99,
        "net_paid": 19.98,
        "customer_id": customer_id,
        "store_id": "S1",
        "promo_id": "P1",
        "processing_datetime": at,
    }
    return row | attrs


def state_of(wh: Warehouse) -> dict[str, tuple[int, str]]:
    """Row count and checksum per table of CHECKSUM_SQL."""
    result = {}
    for name, sql in CHECKSUM_SQL.items():
        rows = wh.rows(sql)
        result[name] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()[:16])
    return result
