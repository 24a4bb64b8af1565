from __future__ import annotations

import datetime as dt

import pytest

from tasks.redshift_data import InvalidRequestError, RedshiftTarget, StepKey, night_prefix

TARGET = RedshiftTarget(database="dev", workgroup_name="mystore-wg")


def test_names_trace_back_to_pipeline_date_step_attempt() -> None:
    step = StepKey("mystore-nightly", dt.date(2026, 11, 25), "load_customer_dim")
    assert step.name_prefix == "mystore-nightly/2026-11-25/load_customer_dim/attempt-"
    assert (
        step.attempt(3).statement_name == "mystore-nightly/2026-11-25/load_customer_dim/attempt-3"
    )
    assert night_prefix("mystore-nightly", "2026-11-25") == "mystore-nightly/2026-11-25/"


@pytest.mark.parametrize(
    ("name", "attempt"),
    [
        ("p/2026-11-25/load/attempt-1", 1),
        ("p/2026-11-25/load/attempt-12", 12),
        ("p/2026-11-25/load/attempt-01", None),
        ("p/2026-11-25/load/attempt-1x", None),
        ("p/2026-11-25/load_customer/attempt-1", None),
        ("p/2026-11-24/load/attempt-1", None),
        (None, None),
    ],
)
def test_attempt_of(name: str | None, attempt: int | None) -> None:
    assert StepKey("p", "2026-11-25", "load").attempt_of(name) == attempt


def test_token_is_stable_64_chars_and_per_attempt() -> None:
    run = StepKey("p", "2026-11-25", "load").attempt(1)
    token = run.client_token(TARGET)
    assert len(token) == 64 and token == StepKey("p", "2026-11-25", "load").attempt(1).client_token(
        TARGET
    )
    assert run.cache_key(TARGET) == f"redshift-data-submit-{token}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("a/b", "2026-11-25", "load"), "pipeline 'a/b' is invalid"),
        (("p", "2026-11-25", ""), "step '' is invalid"),
        (("p", "25/11/2026", "load"), "logical_date '25/11/2026' is invalid"),
        (("p", dt.datetime(2026, 11, 25, 1), "load"), "is a datetime"),
    ],
)
def test_bad_keys(args: tuple[object, object, object], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        StepKey(*args)  # type: ignore[arg-type]


def test_attempt_must_be_positive() -> None:
    with pytest.raises(InvalidRequestError, match="attempt 0 is invalid"):
        StepKey("p", "2026-11-25", "load").attempt(0)
