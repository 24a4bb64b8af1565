"""The clean job's pure DataFrame steps on local Spark, with literal rows and exact outputs."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from glue.contract import STORE_CUSTOMER, STORE_CUSTOMER_ADDRESS, STORE_SALE, TableContract
from glue.transforms import (
    clean_batch,
    clean_schema,
    deduplicate,
    raw_schema,
    split_quarantine,
    to_clean,
    type_columns,
)

pytestmark = pytest.mark.slow

ETL = datetime(2026, 11, 26, 2, 0, 0)


def raw_frame(
    spark: SparkSession, contract: TableContract, rows: list[dict[str, Any]]
) -> DataFrame:
    names = [f.name for f in raw_schema(contract).fields]
    return spark.createDataFrame(
        [tuple(row.get(n) for n in names) for row in rows], raw_schema(contract)
    )


def address(**overrides: str | None) -> dict[str, str | None]:
    row: dict[str, str | None] = {
        "address_id": "A1",
        "address_datetime": "2026-11-25 10:00:00",
        "street": "1 Main St",
        "city": "Midway",
        "zip": "12345",
        "county": "Williamson County",
        "state": "TN",
        "country": "United States",
        "gmt_offset": "-6.00",
        "location_type": "condo",
        "processing_datetime": "2026-11-25 10:05:00",
    }
    return row | overrides


def collect_clean(df: DataFrame) -> list[dict[str, Any]]:
    return [r.asDict() for r in df.orderBy(*df.columns[:2]).collect()]


def test_type_cleaning_parses_each_type_and_keeps_zip_a_string(spark: SparkSession) -> None:
    raw = raw_frame(
        spark,
        STORE_CUSTOMER_ADDRESS,
        [
            address(
                address_datetime="2026-11-25T23:30:00Z",
                street="  ",
                zip="2134",
                gmt_offset=" -5.5 ",
                location_type=None,
                processing_datetime="2026-11-26 00:01:02.250",
            )
        ],
    )
    typed = type_columns(raw, STORE_CUSTOMER_ADDRESS)
    clean = to_clean(typed, STORE_CUSTOMER_ADDRESS, ETL)

    assert [(f.name, f.dataType) for f in clean.schema.fields] == [
        (f.name, f.dataType) for f in clean_schema(STORE_CUSTOMER_ADDRESS).fields
    ]
    assert collect_clean(clean) == [
        {
            "address_id": "A1",
            "address_datetime": datetime(2026, 11, 25, 23, 30, 0),
            "street": None,
            "city": "Midway",
            "zip": "02134",
            "county": "Williamson County",
            "state": "TN",
            "country": "United States",
            "gmt_offset": Decimal("-5.50"),
            "location_type": None,
            "processing_datetime": datetime(2026, 11, 26, 0, 1, 2, 250000),
            "etl_processing_datetime": ETL,
            "address_date": date(2026, 11, 25),
        }
    ]
    assert typed.first()["quarantine_reason"] == ""  # type: ignore[index]


def test_customer_row_is_cleaned_into_exactly_the_contract_columns(spark: SparkSession) -> None:
    raw = raw_frame(
        spark,
        STORE_CUSTOMER,
        [
            {
                "customer_id": "C1",
                "customer_datetime": "2026-11-25 08:00:00",
                "first_name": " Ana ",
                "last_name": "Silva",
                "salutation": "",
                "gender": "F",
                "birth_date": "1980-02-29",
                "birth_country": "BRAZIL",
                "email_address": None,
                "marital_status": "M",
                "education_status": "College",
                "lower_bound": "10001",
                "upper_bound": "20000",
                "purchase_estimate": " 500",
                "buy_potential": "0-500",
                "credit_rating": "Good",
                "vehicle_count": "2",
                "address_id": "A9",
                "processing_datetime": "2026-11-25 08:00:05",
            }
        ],
    )
    batch = clean_batch(raw, STORE_CUSTOMER, ETL)

    assert batch.clean.columns == list(STORE_CUSTOMER.column_names)
    assert collect_clean(batch.clean) == [
        {
            "customer_id": "C1",
            "customer_datetime": datetime(2026, 11, 25, 8, 0, 0),
            "first_name": "Ana",
            "last_name": "Silva",
            "salutation": None,
            "gender": "F",
            "birth_date": date(1980, 2, 29),
            "birth_country": "BRAZIL",
            "email_address": None,
            "marital_status": "M",
            "education_status": "College",
            "lower_bound": 10001,
            "upper_bound": 20000,
            "purchase_estimate": 500,
            "buy_potential": "0-500",
            "credit_rating": "Good",
            "vehicle_count": 2,
            "address_id": "A9",
            "processing_datetime": datetime(2026, 11, 25, 8, 0, 5),
            "etl_processing_datetime": ETL,
            "customer_date": date(2026, 11, 25),
        }
    ]
    assert batch.quarantine.count() == 0


def test_rows_that_cannot_be_cleaned_are_quarantined_with_reasons(spark: SparkSession) -> None:
    raw = raw_frame(
        spark,
        STORE_CUSTOMER_ADDRESS,
        [
            address(address_id="OK"),
            address(address_id=None),
            address(address_id=" "),
            address(address_id="BADTS", address_datetime="2026-02-30 10:00:00"),
            address(address_id="NOTS", address_datetime=None),
            address(address_id="BADNUM", gmt_offset="minus five"),
            address(address_id=None, address_datetime="yesterday", gmt_offset="123456"),
        ],
    )
    good, bad = split_quarantine(type_columns(raw, STORE_CUSTOMER_ADDRESS))

    assert [r["address_id"] for r in good.collect()] == ["OK"]
    reasons = sorted(
        (r["address_id"] or "<null>", r["quarantine_reason"])
        for r in bad.select("address_id", "quarantine_reason").collect()
    )
    assert reasons == [
        (" ", "missing key address_id"),
        ("<null>", "missing key address_id"),
        (
            "<null>",
            "missing key address_id; unparseable timestamp address_datetime: 'yesterday'; "
            "unparseable decimal(5,2) gmt_offset: '123456'",
        ),
        ("BADNUM", "unparseable decimal(5,2) gmt_offset: 'minus five'"),
        ("BADTS", "unparseable timestamp address_datetime: '2026-02-30 10:00:00'"),
        ("NOTS", "missing ordering address_datetime"),
    ]


def test_quarantine_keeps_the_raw_strings_and_malformed_lines(
    spark: SparkSession, tmp_path: Any
) -> None:
    raw_file = tmp_path / "part-00000.json"
    raw_file.write_text(
        '{"address_id": "A1", "address_datetime": "2026-11-25 10:00:00", "zip": "00501"}\n'
        '{"address_id": "A2", "address_datetime": "not a time", "gmt_offset": "-5"}\n'
        "this is not json\n"
    )
    raw = spark.read.schema(raw_schema(STORE_CUSTOMER_ADDRESS)).json(str(tmp_path))
    batch = clean_batch(raw, STORE_CUSTOMER_ADDRESS, ETL)

    rows = sorted(
        (
            (
                r["quarantine_reason"],
                r["address_id"],
                r["address_datetime"],
                r["gmt_offset"],
                r["raw_record"],
            )
            for r in batch.quarantine.collect()
        ),
        key=lambda row: row[0],
    )
    assert rows == [
        ("malformed record", None, None, None, "this is not json"),
        ("unparseable timestamp address_datetime: 'not a time'", "A2", "not a time", "-5", None),
    ]
    assert set(batch.quarantine.columns) >= {"etl_processing_datetime", "quarantine_reason"}
    assert [r["zip"] for r in batch.clean.collect()] == ["00501"]


def test_in_batch_duplicates_keep_the_latest_event_then_processing_time(
    spark: SparkSession,
) -> None:
    raw = raw_frame(
        spark,
        STORE_CUSTOMER_ADDRESS,
        [
            address(address_id="A1", street="old", address_datetime="2026-11-25 09:00:00"),
            address(address_id="A1", street="new", address_datetime="2026-11-25 11:00:00"),
            address(address_id="A1", street="mid", address_datetime="2026-11-25 10:00:00"),
            address(address_id="A2", street="first", processing_datetime="2026-11-25 10:01:00"),
            address(address_id="A2", street="resent", processing_datetime="2026-11-25 10:09:00"),
            address(address_id="A3", street="same"),
            address(address_id="A3", street="same"),
        ],
    )
    good, _ = split_quarantine(type_columns(raw, STORE_CUSTOMER_ADDRESS))
    deduped = to_clean(deduplicate(good, STORE_CUSTOMER_ADDRESS), STORE_CUSTOMER_ADDRESS, ETL)

    assert sorted((r["address_id"], r["street"]) for r in deduped.collect()) == [
        ("A1", "new"),
        ("A2", "resent"),
        ("A3", "same"),
    ]


def test_sale_composite_key_is_typed_and_checked_per_part(spark: SparkSession) -> None:
    sale = {
        "ticket_id": "1000001",
        "item_id": "17",
        "sale_datetime": "2026-11-24 18:00:00",
        "quantity": "3",
        "sales_price": "9.99",
        "net_paid": "29.97",
        "customer_id": None,
        "store_id": "S001",
        "processing_datetime": "2026-11-25 01:00:00",
    }
    raw = raw_frame(
        spark,
        STORE_SALE,
        [
            sale,
            sale | {"item_id": "18", "quantity": "1"},
            sale | {"item_id": "17", "quantity": "4", "processing_datetime": "2026-11-25 02:00:00"},
            sale | {"ticket_id": "12abc"},
            sale | {"item_id": None},
        ],
    )
    batch = clean_batch(raw, STORE_SALE, ETL)

    clean = sorted(
        (r["ticket_id"], r["item_id"], r["quantity"], r["sales_price"], r["sale_date"])
        for r in batch.clean.collect()
    )
    assert clean == [
        (1000001, 17, 4, Decimal("9.99"), date(2026, 11, 24)),
        (1000001, 18, 1, Decimal("9.99"), date(2026, 11, 24)),
    ]
    assert sorted(r["quarantine_reason"] for r in batch.quarantine.collect()) == [
        "missing key item_id",
        "unparseable bigint ticket_id: '12abc'",
    ]


def test_event_times_beyond_the_horizon_are_quarantined_naming_value_and_horizon(
    spark: SparkSession,
) -> None:
    horizon = datetime(2026, 11, 27, 2, 0, 0)
    raw = raw_frame(
        spark,
        STORE_CUSTOMER_ADDRESS,
        [
            address(address_id="TODAY", address_datetime="2026-11-26 23:00:00"),
            address(address_id="AT", address_datetime="2026-11-27 02:00:00"),
            address(address_id="FUTURE", address_datetime="9999-12-31 00:00:00"),
        ],
    )
    batch = clean_batch(raw, STORE_CUSTOMER_ADDRESS, ETL, horizon=horizon)
    assert sorted(r["address_id"] for r in batch.clean.collect()) == ["AT", "TODAY"]
    rejected = [(r["address_id"], r["quarantine_reason"]) for r in batch.quarantine.collect()]
    assert rejected == [
        (
            "FUTURE",
            "address_datetime '9999-12-31 00:00:00' is beyond the event-time horizon "
            "2026-11-27 02:00:00",
        )
    ]
