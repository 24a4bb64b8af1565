from datetime import date

import pytest

from flows.pipeline import (
    CheckStep,
    GlueStep,
    Pipeline,
    PipelineDefinitionError,
    ProcedureStep,
    nightly_pipeline,
    render_arguments,
)


def test_nightly_cleans_all_tables_in_parallel_before_the_load() -> None:
    layers = nightly_pipeline().layers()
    assert [s.name for s in layers[0]] == [
        "clean_store_customer",
        "clean_store_customer_address",
        "clean_store_sale",
    ]
    assert [s.name for s in layers[1]] == ["load_warehouse"]
    assert {s.name for s in layers[2]} == {
        "check_one_current_version",
        "check_fact_dimension_keys",
        "check_sales_reconciled",
    }
    load = nightly_pipeline().step("load_warehouse")
    assert isinstance(load, ProcedureStep)
    assert (load.schema, load.procedure, load.args) == (
        "stg_mystore",
        "sp_run_incremental_load",
        (),
    )
    assert set(load.depends_on) == {s.name for s in layers[0]}


def test_glue_steps_carry_table_and_date_placeholder() -> None:
    step = nightly_pipeline("my-job").step("clean_store_sale")
    assert isinstance(step, GlueStep)
    assert step.job_name == "my-job"
    assert render_arguments(step.arguments, date(2026, 11, 25)) == {
        "--table": "store_sale",
        "--logical_date": "2026-11-25",
    }


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ((CheckStep("a", "d", "select 1"), CheckStep("a", "d", "select 1")), "used twice"),
        ((CheckStep("a", "d", "select 1", depends_on=("b",)),), "unknown steps ['b']"),
        (
            (
                CheckStep("a", "d", "select 1", depends_on=("b",)),
                CheckStep("b", "d", "select 1", depends_on=("a",)),
            ),
            "cycle",
        ),
        ((CheckStep("Bad Name; drop", "d", "select 1"),), "must be 1-64 characters"),
        ((CheckStep("x" * 65, "d", "select 1"),), "must be 1-64 characters"),
    ],
)
def test_malformed_pipelines_are_rejected(steps: tuple[CheckStep, ...], message: str) -> None:
    with pytest.raises(
        PipelineDefinitionError, match=message.replace("[", r"\[").replace("]", r"\]")
    ):
        Pipeline(name="p", steps=steps)


def test_unknown_step_lookup_names_the_step() -> None:
    with pytest.raises(KeyError, match="no step 'nope'"):
        nightly_pipeline().step("nope")
