"""The pipeline definition: what runs, in which order, with which retry and wait policy.

The Prefect flow executes this definition and the Step Functions export translates the
same object into Amazon States Language, so the two deployment targets cannot drift. It is
plain data: no boto3, no Prefect, so tests and the export can build it without a runtime.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Literal

from glue.contract import CLEAN_TABLES

STEP_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


class PipelineDefinitionError(ValueError):
    """The pipeline itself is malformed (a bug in the definition, not a runtime failure)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often a step is tried when the failure is not the step's own verdict.

    A FAILED statement or Glue run is the work's verdict and is not retried blindly; these
    retries cover the orchestration around it (a refused submit, a service that stayed
    unreachable while waiting), and each one reattaches instead of running again.
    """

    attempts: int = 3
    delay_seconds: float = 10.0
    backoff_rate: float = 2.0
    jitter: bool = True


@dataclass(frozen=True)
class StepWait:
    """How long a step may run before it is cancelled (the statement) or stopped (the run)."""

    timeout_seconds: float = 6 * 3600


@dataclass(frozen=True)
class GlueStep:
    """One Glue job run; ``arguments`` may use ``{logical_date}`` and ``{table}``."""

    name: str
    job_name: str
    arguments: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    retry: RetryPolicy = RetryPolicy()
    wait: StepWait = StepWait()

    kind: Literal["glue"] = "glue"


@dataclass(frozen=True)
class ProcedureStep:
    """One stored procedure CALL through the Data API; ``args`` travel as Parameters."""

    name: str
    schema: str
    procedure: str
    args: tuple[str | None, ...] = ()
    depends_on: tuple[str, ...] = ()
    retry: RetryPolicy = RetryPolicy()
    wait: StepWait = StepWait()

    kind: Literal["procedure"] = "procedure"


@dataclass(frozen=True)
class CheckStep:
    """A data-quality check: ``sql`` returns the offending rows; none means it passed."""

    name: str
    description: str
    sql: str
    depends_on: tuple[str, ...] = ()
    retry: RetryPolicy = RetryPolicy(attempts=2)
    wait: StepWait = StepWait(timeout_seconds=1800)

    kind: Literal["check"] = "check"


Step = GlueStep | ProcedureStep | CheckStep


@dataclass(frozen=True)
class Pipeline:
    name: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        validate(self)

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"no step {name!r} in pipeline {self.name!r}")

    def layers(self) -> list[tuple[Step, ...]]:
        """Steps grouped into layers that may run in parallel, in dependency order."""
        done: set[str] = set()
        remaining = list(self.steps)
        layers: list[tuple[Step, ...]] = []
        while remaining:
            ready = tuple(s for s in remaining if set(s.depends_on) <= done)
            layers.append(ready)
            done.update(s.name for s in ready)
            remaining = [s for s in remaining if s.name not in done]
        return layers

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)


def validate(pipeline: Pipeline) -> None:
    """Reject duplicate or oddly named steps, unknown dependencies and cycles."""
    names: set[str] = set()
    for step in pipeline.steps:
        if not step.name or not set(step.name) <= STEP_NAME_CHARS or len(step.name) > 64:
            raise PipelineDefinitionError(
                f"step name {step.name!r} must be 1-64 characters of a-z, 0-9, '_' or '-'"
            )
        if step.name in names:
            raise PipelineDefinitionError(f"step name {step.name!r} is used twice")
        names.add(step.name)
    for step in pipeline.steps:
        unknown = [d for d in step.depends_on if d not in names]
        if unknown:
            raise PipelineDefinitionError(f"step {step.name!r} depends on unknown steps {unknown}")
    # Kahn's algorithm: anything left over sits on a cycle.
    done: set[str] = set()
    progress = True
    while progress:
        progress = False
        for step in pipeline.steps:
            if step.name not in done and set(step.depends_on) <= done:
                done.add(step.name)
                progress = True
    cyclic = sorted(names - done)
    if cyclic:
        raise PipelineDefinitionError(f"steps {cyclic} depend on each other in a cycle")


# --- the nightly pipeline ---------------------------------------------------------------

WAREHOUSE_SCHEMA = "stg_mystore"
INCREMENTAL_LOAD = "sp_run_incremental_load"

QUALITY_CHECKS: tuple[CheckStep, ...] = (
    CheckStep(
        name="check_one_current_version",
        description="exactly one current version per customer",
        sql=(
            "select customer_id, count(*) as current_versions"
            " from dw_mystore.customer_dim"
            " where scd_current_flag = 'Y' and customer_key <> -1"
            " group by customer_id having count(*) <> 1"
        ),
        depends_on=("load_warehouse",),
    ),
    CheckStep(
        name="check_fact_dimension_keys",
        description="no sale points at a missing customer, date or time key",
        sql=(
            "select f.ticket_id, f.item_id, f.sold_date"
            " from dw_mystore.sale_fact f"
            " left join dw_mystore.customer_dim c on c.customer_key = f.customer_key"
            " left join dw_mystore.date_dim d on d.date_key = f.sold_date_key"
            " left join dw_mystore.time_dim t on t.time_key = f.sold_time_key"
            " where c.customer_key is null or d.date_key is null or t.time_key is null"
        ),
        depends_on=("load_warehouse",),
    ),
    CheckStep(
        name="check_sales_reconciled",
        description="every clean sale up to the high-water mark is in the fact table once",
        sql=(
            "select s.ticket_id, s.item_id, count(f.ticket_id) as fact_rows"
            " from ext_clean_mystore.store_sale as s"
            " left join dw_mystore.sale_fact as f"
            " on f.ticket_id = s.ticket_id and f.item_id = s.item_id"
            " where s.etl_processing_datetime <= (select m.start_date"
            " from stg_mystore.dw_incremental_dates as m"
            " where m.source_table_name = 'store_sale')"
            " group by s.ticket_id, s.item_id having count(f.ticket_id) <> 1"
        ),
        depends_on=("load_warehouse",),
    ),
)


def clean_step_name(table: str) -> str:
    return f"clean_{table}"


def nightly_pipeline(glue_job_name: str = "raw2clean") -> Pipeline:
    """Clean every table (in parallel), then load the warehouse once all have committed."""
    clean_steps = tuple(
        GlueStep(
            name=clean_step_name(table),
            job_name=glue_job_name,
            arguments={"--table": table, "--logical_date": "{logical_date}"},
        )
        for table in CLEAN_TABLES
    )
    load = ProcedureStep(
        name="load_warehouse",
        schema=WAREHOUSE_SCHEMA,
        procedure=INCREMENTAL_LOAD,
        depends_on=tuple(s.name for s in clean_steps),
    )
    return Pipeline(name="mystore-nightly", steps=(*clean_steps, load, *QUALITY_CHECKS))


def history_pipeline(
    start: date,
    end: date,
    *,
    source: Literal["clean_table", "s3_parquet"] = "clean_table",
    s3_prefix: str | None = None,
    iam_role: str | None = None,
) -> Pipeline:
    """Stage a date range of sales, load it with sp_run_history_load, then check.

    Step names carry the range's end, so two backfills that start on the same day never
    reattach to each other's statements.
    """
    if start > end:
        raise PipelineDefinitionError(
            f"start_date {start.isoformat()} is after end_date {end.isoformat()}"
        )
    suffix = f"to_{end:%Y%m%d}"
    span = (start.isoformat(), end.isoformat())
    if source == "s3_parquet":
        if not s3_prefix or not iam_role:
            raise PipelineDefinitionError(
                "history source 's3_parquet' needs MYSTORE_HISTORY_S3_PREFIX and"
                " MYSTORE_HISTORY_IAM_ROLE"
            )
        stage = ProcedureStep(
            name=f"stage_sales_{suffix}",
            schema=WAREHOUSE_SCHEMA,
            procedure="sp_copy_data",
            args=(*span, s3_prefix, iam_role),
        )
    else:
        stage = ProcedureStep(
            name=f"stage_sales_{suffix}",
            schema=WAREHOUSE_SCHEMA,
            procedure="sp_stage_store_sale",
            args=span,
        )
    load = ProcedureStep(
        name=f"load_history_{suffix}",
        schema=WAREHOUSE_SCHEMA,
        procedure="sp_run_history_load",
        args=span,
        depends_on=(stage.name,),
    )
    checks = tuple(
        replace(check, name=f"{check.name}_{suffix}", depends_on=(load.name,))
        for check in QUALITY_CHECKS[:2]
    )
    return Pipeline(name="mystore-history", steps=(stage, load, *checks))


def render_arguments(arguments: Mapping[str, str], logical_date: date) -> dict[str, str]:
    """Fill the ``{logical_date}`` placeholder; other braces are left as they are."""
    return {k: v.replace("{logical_date}", logical_date.isoformat()) for k, v in arguments.items()}
