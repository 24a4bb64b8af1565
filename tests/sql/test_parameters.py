"""Bad parameters fail with a message naming the value and what is allowed."""

from __future__ import annotations

from datetime import datetime

import pytest

from tasks.redshift_data import StatementFailedError
from tests.sql.staging import Warehouse


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "call stg_mystore.sp_load_sale_fact('WEEKLY', null, null)",
            "load_type 'WEEKLY' is not valid: expected HISTORY or INCREMENTAL",
        ),
        (
            "call stg_mystore.sp_load_sale_fact(null, null, null)",
            "load_type NULL is not valid",
        ),
        (
            "call stg_mystore.sp_load_sale_fact('INCREMENTAL', '2026-01-01', null)",
            "INCREMENTAL loads take no dates (got start_date 2026-01-01, end_date NULL)",
        ),
        (
            "call stg_mystore.sp_load_sale_fact('HISTORY', '2026-01-01', null)",
            "HISTORY loads need both start_date and end_date (got 2026-01-01, NULL)",
        ),
        (
            "call stg_mystore.sp_run_history_load('2026-02-01', '2026-01-01')",
            "start_date 2026-02-01 is after end_date 2026-01-01",
        ),
        (
            "call stg_mystore.sp_return_high_water_mark(null, null)",
            "source table name is NULL: expected a table name such as store_sale",
        ),
        (
            "call stg_mystore.sp_update_high_water_mark('store_sale', null)",
            "the new high-water mark for store_sale must not be NULL",
        ),
        (
            "call stg_mystore.sp_copy_data('2026-01-01', '2026-01-02', 'http://x/y', "
            "'arn:aws:iam::123456789012:role/r')",
            "s3_prefix 'http://x/y' is not valid: expected s3://bucket/prefix",
        ),
        (
            "call stg_mystore.sp_copy_data('2026-01-01', '2026-01-02', 's3://bucket/sales', "
            "'arn:aws:iam::123:role/r''; drop table x')",
            "iam_role 'arn:aws:iam::123:role/r'; drop table x' is not valid",
        ),
        (
            "call stg_mystore.sp_load_date_dim('1000-01-01', '2999-12-31')",
            "longer than 100000 days",
        ),
    ],
)
def test_invalid_parameters_raise_clear_errors(wh: Warehouse, sql: str, message: str) -> None:
    with pytest.raises(StatementFailedError) as failure:
        wh.call(sql)
    assert message in str(failure.value)


def test_the_high_water_mark_never_moves_backwards(wh: Warehouse) -> None:
    wh.call("call stg_mystore.sp_update_high_water_mark('store_sale', '2026-05-01')")
    wh.call("call stg_mystore.sp_update_high_water_mark('store_sale', '2026-04-01')")
    [row] = wh.query("call stg_mystore.sp_return_high_water_mark('store_sale', null)")
    assert str(row["p_high_water_mark"]).startswith("2026-05-01")


def test_copy_data_checks_its_parameters_before_reaching_s3_which_is_redshift_only(
    wh: Warehouse,
) -> None:
    """Valid parameters get as far as COPY, which the local warehouse cannot run."""
    with pytest.raises(StatementFailedError, match="syntax error"):
        wh.call(
            "call stg_mystore.sp_copy_data('2026-01-01', '2026-01-01', 's3://bucket/sales/',"
            " 'arn:aws:iam::123456789012:role/copy')"
        )


def test_a_missing_high_water_mark_row_is_created_at_1900(wh: Warehouse) -> None:
    """As in the original design: a new source table needs no hand-made mark row."""
    assert "store_items" not in wh.marks()
    [row] = wh.query("call stg_mystore.sp_return_high_water_mark('store_items', null)")
    assert str(row["p_high_water_mark"]).startswith("1900-01-01")
    assert wh.marks()["store_items"] == datetime(1900, 1, 1)
    wh.call("call stg_mystore.sp_update_high_water_mark('store_items', '2026-03-01')")
    assert wh.marks()["store_items"] == datetime(2026, 3, 1)
