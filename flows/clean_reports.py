"""The clean job's JSON report per step and night: where it goes and how a run reads it back.

The report is the only place the clean job's row counts live (``glue/raw2clean.py`` writes
it to ``--report_path``), so every run, whatever started it, passes a report path and reads
the report after the run: on AWS from S3 (``MYSTORE_GLUE_REPORT_PATH``, an ``s3://`` prefix
the Glue job's role may write), on the embedded default from ``<data dir>/reports`` unless
the setting names another place. When no report can be read the summary says why instead
of leaving the rows column empty.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from flows.settings import Settings

REPORT_PATH_VARIABLE = "MYSTORE_GLUE_REPORT_PATH"
# The report's ``input`` for a date without a raw partition that --allow_empty_input let
# pass (glue/raw2clean.py writes "none (allowed by --allow_empty_input)").
NO_INPUT_PREFIX = "none"


def report_root(settings: Settings) -> str | None:
    """The setting when given; on the embedded default ``<data dir>/reports``; else None."""
    if settings.glue_report_path:
        return settings.glue_report_path
    if settings.target == "local":
        return str(settings.local_data_dir.expanduser().resolve() / "reports")
    return None


def report_path(root: str | None, step: str, night: date) -> str | None:
    if not root:
        return None
    return f"{root.rstrip('/')}/{night.isoformat()}/{step}.json"


class UnreadableCleanReportError(RuntimeError):
    """A clean run succeeded but its report could not be read while days without raw data
    are allowed: only the report tells such a day from one that loaded rows, so the night
    stops instead of reporting a success that may have loaded nothing."""

    def __init__(self, step: str, run_id: str, reason: str) -> None:
        super().__init__(
            f"{step}: Glue run {run_id} SUCCEEDED, but {reason}; with "
            "MYSTORE_ALLOW_EMPTY_INPUT=true only the clean job's report says whether the day "
            "had raw data, so the night stops here rather than report a success that may "
            "have loaded nothing. Run the night again once the report can be read: it "
            "reattaches to the run"
        )
        self.step, self.run_id, self.reason = step, run_id, reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.step, self.run_id, self.reason))


@dataclass(frozen=True)
class RowsWritten:
    """Rows the clean job wrote, or why the count is not known (``rows`` None)."""

    rows: int | None
    missing_reason: str = ""
    no_input: bool = False  # the job found no raw partition and was allowed to (no rows)


S3Reader = Callable[[str, str], bytes]


def read_rows_written(path: str | None, read_s3: S3Reader | None = None) -> RowsWritten:
    """``rows_written`` from the report at ``path`` (a local file or ``s3://bucket/key``)."""
    if path is None:
        return RowsWritten(None, f"no report path: set {REPORT_PATH_VARIABLE}")
    try:
        if path.startswith("s3://"):
            if read_s3 is None:
                return RowsWritten(None, "no S3 client to read the report")
            bucket, _, key = path[len("s3://") :].partition("/")
            text = read_s3(bucket, key).decode()
        elif "://" in path:
            return RowsWritten(None, f"report {path} is neither a file nor s3://")
        else:
            text = Path(path).read_text()
        report: Mapping[str, Any] = json.loads(text)
    except Exception as exc:  # informative only: a missing report must not fail the night
        return RowsWritten(None, f"report {path} unreadable ({type(exc).__name__}: {exc})"[:200])
    rows = report.get("rows_written")
    if str(report.get("input", "")).startswith(NO_INPUT_PREFIX):
        return RowsWritten(0, no_input=True)
    if rows is None:
        return RowsWritten(None, f"report {path} has no rows_written ({report.get('input', '')})")
    return RowsWritten(int(rows))
