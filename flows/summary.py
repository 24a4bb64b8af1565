"""What a night did, as data: per-step outcomes, warehouse deltas and API calls.

Built from measurements the flow already has, rendered twice from the same object (a
terminal table and the Prefect markdown artifact), so the two never disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

StepStatus = Literal["succeeded", "failed", "skipped", "reattached", "no input"]
# A clean step whose date had no raw partition, allowed by MYSTORE_ALLOW_EMPTY_INPUT.
NO_INPUT_STATUS: StepStatus = "no input"
# The flow run's final state name when the night passed with a step of no input: a
# Completed run that is not a silent green one on the run page.
NO_INPUT_STATE_NAME = "NoInput"
# The Prefect task-run state name of a step that only read an earlier run's work.
REATTACHED_STATE_NAME = "Reattached"


def finished_status(reattached: bool) -> StepStatus:
    """The one rule for a finished step, used by the summary and the task-run state alike:
    "reattached" when it only read work an earlier run did, "succeeded" when this run did it."""
    return "reattached" if reattached else "succeeded"


@dataclass
class StepOutcome:
    name: str
    kind: str
    status: StepStatus
    duration_seconds: float = 0.0
    rows: int | None = None
    detail: str = ""
    rows_missing: str = ""  # why ``rows`` is unknown where a count was expected ("n/a")


@dataclass(frozen=True)
class WarehouseChanges:
    """What the load changed, measured against the warehouse's own timestamps."""

    customers_inserted: int = 0
    customers_updated_in_place: int = 0
    customers_versioned: int = 0
    sales_loaded: int = 0  # new sales: how much the fact table grew
    # Sales written again in place (a backfill or a forced rerun of loaded dates, a
    # corrected sale): without them such a run would read as one that loaded nothing.
    sales_replaced: int = 0

    @staticmethod
    def from_row(row: Mapping[str, Any], sales_before: int) -> WarehouseChanges:
        loaded = int(row.get("sales") or 0) - sales_before
        return WarehouseChanges(
            customers_inserted=int(row.get("customers_inserted") or 0),
            customers_updated_in_place=int(row.get("customers_updated_in_place") or 0),
            customers_versioned=int(row.get("customers_versioned") or 0),
            sales_loaded=loaded,
            sales_replaced=max(0, int(row.get("sales_written") or 0) - max(0, loaded)),
        )


@dataclass
class NightSummary:
    pipeline: str
    logical_date: date
    target: str
    steps: list[StepOutcome] = field(default_factory=list)
    changes: WarehouseChanges | None = None
    api_calls: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    wall_seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.error is None and all(s.status != "failed" for s in self.steps)

    @property
    def no_input_steps(self) -> list[str]:
        """The steps whose date had no raw partition (allowed, so they loaded nothing)."""
        return [s.name for s in self.steps if s.status == NO_INPUT_STATUS]

    @property
    def verdict(self) -> str:
        """ "succeeded", "succeeded (no input)" (a step had no raw data) or "FAILED"."""
        if not self.succeeded:
            return "FAILED"
        return "succeeded (no input)" if self.no_input_steps else "succeeded"

    def no_input_headline(self) -> str | None:
        """The line that names the steps without input; None when every step had some."""
        steps = self.no_input_steps
        if not steps:
            return None
        return (
            f"NO INPUT: {', '.join(steps)} found no raw partition for "
            f"{self.logical_date.isoformat()} and loaded nothing (allowed by "
            "MYSTORE_ALLOW_EMPTY_INPUT); the night passed without their data"
        )

    def warehouse_changes(self) -> dict[str, int]:
        """Customers inserted, updated in place and versioned; sales loaded and replaced."""
        if self.changes is None:
            return {}
        return {
            "customers inserted": self.changes.customers_inserted,
            "customers updated in place": self.changes.customers_updated_in_place,
            "customers versioned (SCD2)": self.changes.customers_versioned,
            "sales loaded": self.changes.sales_loaded,
            "sales replaced": self.changes.sales_replaced,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "logical_date": self.logical_date.isoformat(),
            "target": self.target,
            "succeeded": self.succeeded,
            "verdict": self.verdict,
            "no_input": self.no_input_steps,
            "no_input_headline": self.no_input_headline(),
            "error": self.error,
            "wall_seconds": round(self.wall_seconds, 3),
            "steps": [vars(s) for s in self.steps],
            "warehouse": self.warehouse_changes(),
            "api_calls": dict(sorted(self.api_calls.items())),
        }


STEP_COLUMNS = ("step", "status", "duration", "rows", "detail")


def step_cells(step: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    """One step as the table cells both the terminal and the artifact show, from the
    step's dict form (``as_dict()["steps"]``): a missing count is "n/a" with the reason."""
    rows, missing = step.get("rows"), step.get("rows_missing") or ""
    detail = str(step.get("detail") or "")
    if rows is None and missing:
        shown_rows = "n/a"
        detail = f"{detail}; rows n/a: {missing}" if detail else f"rows n/a: {missing}"
    else:
        shown_rows = "" if rows is None else f"{int(rows):,}"
    duration = f"{float(step.get('duration_seconds') or 0.0):.1f}s"
    return str(step["name"]), str(step["status"]), duration, shown_rows, detail


def step_table_rows(summary: NightSummary) -> list[tuple[str, str, str, str, str]]:
    return [step_cells(vars(s)) for s in summary.steps]


def to_markdown(summary: NightSummary) -> str:
    """The Prefect artifact: a headline, the step table, warehouse changes, API calls."""
    lines = [
        f"# {summary.pipeline} {summary.logical_date.isoformat()} ({summary.target}): "
        f"{summary.verdict}",
        "",
    ]
    headline = summary.no_input_headline()
    if headline:
        lines += [f"**{_md_escape(headline)}**", ""]
    if summary.error:
        lines += [f"**Error:** {_md_escape(summary.error)}", ""]
    lines += ["| " + " | ".join(STEP_COLUMNS) + " |", "|---|---|---|---|---|"]
    lines += [
        "| " + " | ".join(_md_escape(cell) for cell in row) + " |"
        for row in step_table_rows(summary)
    ]
    changes = summary.warehouse_changes()
    if changes:
        lines += ["", "| warehouse | count |", "|---|---|"]
        lines += [f"| {k} | {v:,} |" for k, v in changes.items()]
    if summary.api_calls:
        total = sum(summary.api_calls.values())
        calls = ", ".join(f"{op} {n}" for op, n in sorted(summary.api_calls.items()))
        lines += ["", f"API calls: {total} ({calls})"]
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
