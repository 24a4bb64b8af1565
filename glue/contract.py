"""The data contract of the raw and clean tables, in one place.

The clean job, the sample-data generator, the local catalog sync and the local dialect
adapter (which creates ``ext_clean_mystore`` tables on PostgreSQL) all read these
definitions, so a column added here reaches every one of them. Types use a small neutral
vocabulary that each consumer maps to its own system (Spark, Arrow, PostgreSQL, Redshift).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnType = Literal["string", "timestamp", "date", "int", "bigint", "decimal(7,2)", "decimal(5,2)"]

ETL_PROCESSING_DATETIME = "etl_processing_datetime"


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType


@dataclass(frozen=True)
class TableContract:
    """One clean table: its record key, event-time ordering field and partition column.

    ``raw_columns`` are what the raw feed carries; the clean table adds the partition date
    (derived from ``ordering``) and ``etl_processing_datetime``.
    """

    name: str
    key: tuple[str, ...]
    ordering: str
    partition: str
    raw_columns: tuple[Column, ...]

    @property
    def clean_columns(self) -> tuple[Column, ...]:
        return (
            *self.raw_columns,
            Column(ETL_PROCESSING_DATETIME, "timestamp"),
            Column(self.partition, "date"),
        )

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.clean_columns)


def _cols(spec: str, type_: ColumnType) -> tuple[Column, ...]:
    return tuple(Column(name.strip(), type_) for name in spec.split(",") if name.strip())


STORE_CUSTOMER = TableContract(
    name="store_customer",
    key=("customer_id",),
    ordering="customer_datetime",
    partition="customer_date",
    raw_columns=(
        Column("customer_id", "string"),
        Column("customer_datetime", "timestamp"),
        *_cols("first_name, last_name, salutation, gender", "string"),
        Column("birth_date", "date"),
        *_cols("birth_country, email_address, marital_status, education_status", "string"),
        *_cols("lower_bound, upper_bound, purchase_estimate", "int"),
        *_cols("buy_potential, credit_rating", "string"),
        Column("vehicle_count", "int"),
        Column("address_id", "string"),
        Column("processing_datetime", "timestamp"),
    ),
)

STORE_CUSTOMER_ADDRESS = TableContract(
    name="store_customer_address",
    key=("address_id",),
    ordering="address_datetime",
    partition="address_date",
    raw_columns=(
        Column("address_id", "string"),
        Column("address_datetime", "timestamp"),
        *_cols("street, city, zip, county, state, country", "string"),
        Column("gmt_offset", "decimal(5,2)"),
        Column("location_type", "string"),
        Column("processing_datetime", "timestamp"),
    ),
)

STORE_SALE = TableContract(
    name="store_sale",
    key=("ticket_id", "item_id"),
    ordering="sale_datetime",
    partition="sale_date",
    raw_columns=(
        Column("ticket_id", "bigint"),
        Column("item_id", "int"),
        Column("sale_datetime", "timestamp"),
        Column("quantity", "int"),
        *_cols(
            "wholesale_cost, list_price, sales_price, ext_discount_amt, ext_sales_price,"
            " ext_wholesale_cost, ext_list_price, ext_tax, coupon_amt, net_paid,"
            " net_paid_inc_tax, net_profit",
            "decimal(7,2)",
        ),
        *_cols("customer_id, store_id, promo_id", "string"),
        Column("processing_datetime", "timestamp"),
    ),
)

CLEAN_TABLES: dict[str, TableContract] = {
    t.name: t for t in (STORE_CUSTOMER, STORE_CUSTOMER_ADDRESS, STORE_SALE)
}


def table_contract(name: str) -> TableContract:
    """Look up a table by name, naming the allowed ones when the name is wrong."""
    try:
        return CLEAN_TABLES[name]
    except KeyError:
        allowed = ", ".join(sorted(CLEAN_TABLES))
        raise ValueError(f"unknown clean table {name!r}; expected one of: {allowed}") from None
