from datetime import date

import pytest

from flows.pipeline import (
    CheckStep,
    GlueStep,
    Pipeline,
    PipelineDefinitionError,
    ProcedureStep,
    history_pipeline,
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


def test_history_stages_then_loads_then_checks_keyed_on_the_range() -> None:
    pipeline = history_pipeline(date(2026, 11, 1), date(2026, 11, 3))
    assert [[s.name for s in layer] for layer in pipeline.layers()] == [
        ["stage_sales_to_20261103"],
        ["load_history_to_20261103"],
        ["check_one_current_version_to_20261103", "check_fact_dimension_keys_to_20261103"],
    ]
    stage, load = pipeline.steps[0], pipeline.steps[1]
    assert isinstance(stage, ProcedureStep) and isinstance(load, ProcedureStep)
    assert (stage.procedure, stage.args) == ("sp_stage_store_sale", ("2026-11-01", "2026-11-03"))
    assert (load.procedure, load.args) == ("sp_run_history_load", ("2026-11-01", "2026-11-03"))


def test_history_from_s3_copies_with_the_prefix_and_role() -> None:
    pipeline = history_pipeline(
        date(2026, 11, 1),
        date(2026, 11, 1),
        source="s3_parquet",
        s3_prefix="s3://bkt/sales",
        iam_role="arn:aws:iam::123456789012:role/copy",
    )
    stage = pipeline.steps[0]
    assert isinstance(stage, ProcedureStep)
    assert stage.procedure == "sp_copy_data"
    assert stage.args == (
        "2026-11-01",
        "2026-11-01",
        "s3://bkt/sales",
        "arn:aws:iam::123456789012:role/copy",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": date(2026, 11, 2), "end": date(2026, 11, 1)}, "is after end_date"),
        (
            {"start": date(2026, 11, 1), "end": date(2026, 11, 1), "source": "s3_parquet"},
            "needs MYSTORE_HISTORY_S3_PREFIX and MYSTORE_HISTORY_IAM_ROLE",
        ),
    ],
)
def test_bad_history_ranges_and_sources_are_refused(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(PipelineDefinitionError, match=message):
        history_pipeline(**kwargs)  # type: ignore[arg-type]


def test_a_step_waits_for_all_its_dependencies_not_the_first() -> None:
    """Uneven dependencies: ``c`` needs ``a`` (layer 1) and ``b`` (layer 2), so layer 3."""
    pipeline = Pipeline(
        name="uneven",
        steps=(
            CheckStep("c", "needs both", "select 1", depends_on=("a", "b")),
            CheckStep("b", "needs a", "select 1", depends_on=("a",)),
            CheckStep("a", "first", "select 1"),
        ),
    )
    assert [[s.name for s in layer] for layer in pipeline.layers()] == [["a"], ["b"], ["c"]]
