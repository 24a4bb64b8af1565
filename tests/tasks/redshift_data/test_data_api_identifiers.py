from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tasks.jobs import InvalidRequestError
from tasks.redshift_data.identifiers import call_procedure_sql, quote_identifier


def test_call_renders_placeholders_and_null_constants() -> None:
    sql, params = call_procedure_sql(
        "stg_mystore", "sp_load_sale_fact", ["INCREMENTAL", None, None]
    )
    assert sql == 'CALL "stg_mystore"."sp_load_sale_fact"(:p1, NULL, NULL)'
    assert params == {"p1": "INCREMENTAL"}


def test_call_without_arguments() -> None:
    assert call_procedure_sql("stg_mystore", "sp_run_incremental_load") == (
        'CALL "stg_mystore"."sp_run_incremental_load"()',
        {},
    )


def test_values_travel_as_parameters_never_as_text() -> None:
    hostile = "x'); drop table dw_mystore.sale_fact; --"
    sql, params = call_procedure_sql(
        "stg_mystore",
        "sp_run_history_load",
        {
            "start": dt.date(2024, 1, 1),
            "end": hostile,
            "flag": True,
            "n": 3,
            "d": Decimal("1.50"),
            "e": "",
        },
    )
    assert sql == 'CALL "stg_mystore"."sp_run_history_load"(:p1, :p2, :p3, :p4, :p5, \'\')'
    assert hostile not in sql
    assert params == {"p1": "2024-01-01", "p2": hostile, "p3": "true", "p4": "3", "p5": "1.50"}


def test_names_fold_to_lower_case_and_quote() -> None:
    assert quote_identifier("Stg_MyStore") == '"stg_mystore"'
    assert quote_identifier("select") == '"select"'
    assert quote_identifier("a" * 127) == f'"{"a" * 127}"'


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x(); drop table y", "contains or starts with '\\('"),
        ('sp"x', "contains or starts with '\"'"),
        ("sp'x", 'contains or starts with "\'"'),
        ("a" * 128, "128 bytes"),
        ("sp_l\u043ead", "U\\+043E CYRILLIC SMALL LETTER O"),
        ("\uff53p_load", "U\\+FF53 FULLWIDTH LATIN SMALL LETTER S"),
        ("sp.load", "contains or starts with '\\.'"),
        ("sp load", "contains or starts with ' '"),
        ("1sp", "contains or starts with '1'"),
        ("", "must not be empty"),
    ],
)
def test_rejected_procedure_names(name: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        call_procedure_sql("stg_mystore", name, [])


def test_rejected_schema_is_named_as_schema() -> None:
    with pytest.raises(InvalidRequestError, match=r"^schema 'a;b'"):
        call_procedure_sql("a;b", "sp", [])


def test_unsupported_argument_type_is_named() -> None:
    with pytest.raises(InvalidRequestError, match=r"argument 1 .* has type list"):
        call_procedure_sql("s", "p", [[1, 2]])  # type: ignore[list-item]
    with pytest.raises(InvalidRequestError, match="only finite numbers"):
        call_procedure_sql("s", "p", [float("nan")])


def test_datetime_and_float_formats() -> None:
    _, params = call_procedure_sql("s", "p", [dt.datetime(2024, 5, 6, 7, 8, 9), 0.1, False])
    assert params == {"p1": "2024-05-06 07:08:09", "p2": "0.1", "p3": "false"}
