"""The history load: backfill the warehouse's sales for a date range.

``python -m flows.history --start-date 2026-11-01 --end-date 2026-11-03`` stages the range
(from the clean table, or by COPY of parquet from S3 with ``MYSTORE_HISTORY_SOURCE=s3_parquet``),
runs ``sp_run_history_load(start, end)`` and the data-quality checks. Steps are keyed on the
range, so re-running the same backfill reattaches instead of loading twice.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import FlowRun

from flows.hooks import stop_hook
from flows.nightly import IsoDate, parse_date, summary_file
from flows.pipeline import Pipeline, history_pipeline
from flows.runner import run_pipeline
from flows.runtime import Runtime
from flows.settings import Settings


def _history_of(flow_run: FlowRun) -> tuple[Pipeline, date]:
    start = date.fromisoformat(str(flow_run.parameters["start_date"])[:10])
    end = date.fromisoformat(str(flow_run.parameters["end_date"])[:10])
    return _pipeline(Settings(), start, end), start


def _pipeline(settings: Settings, start: date, end: date) -> Pipeline:
    return history_pipeline(
        start,
        end,
        source=settings.history_source,
        s3_prefix=settings.history_s3_prefix,
        iam_role=settings.history_iam_role,
    )


@flow(
    name="mystore-history",
    log_prints=False,
    validate_parameters=True,
    on_cancellation=[stop_hook(_history_of)],
    on_crashed=[stop_hook(_history_of)],
)
def history(
    start_date: IsoDate,
    end_date: IsoDate,
    force_rerun: bool = False,
    wait_mode: Literal["poll", "suspend"] | None = None,
) -> dict[str, Any]:
    """Backfill the sales of ``start_date``..``end_date`` (inclusive).

    Args:
        start_date: first sale date to (re)load.
        end_date: last sale date to (re)load; not before start_date.
        force_rerun: submit every step afresh instead of reattaching to an earlier
            backfill of the same range.
        wait_mode: poll (wait in the flow process) or suspend (a deployed run holds no
            process while the warehouse works); default MYSTORE_WAIT_MODE, else poll.
    """
    settings = Settings()
    pipeline = _pipeline(settings, start_date, end_date)
    logger = get_run_logger()
    logger.info(
        "History load %s..%s on target %r from %s",
        start_date.isoformat(),
        end_date.isoformat(),
        settings.target,
        settings.history_source,
    )
    runtime = Runtime.from_settings(settings, check_access=True, logger=logger)
    summary = run_pipeline(pipeline, runtime, start_date, force=force_rerun, wait_mode=wait_mode)
    return summary.as_dict()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flows.history",
        description=(
            "Backfill the warehouse's sales for a date range: stage the range into "
            "stg_mystore.store_sale, CALL stg_mystore.sp_run_history_load(start, end), then "
            "run the data-quality checks. On the embedded default the range must already be "
            "in the clean table (run the nightly for those dates first)."
        ),
        epilog=(
            "Exit status: 0 success, 1 a step failed (also when the range has no sales to "
            "stage: a backfill that loads nothing is never a success), 2 bad arguments or "
            "settings, 130 stopped by Ctrl-C (what it had started is stopped first)."
        ),
    )
    parser.add_argument("--start-date", type=parse_date, required=True, metavar="YYYY-MM-DD")
    parser.add_argument("--end-date", type=parse_date, required=True, metavar="YYYY-MM-DD")
    parser.add_argument(
        "--target", choices=("local", "aws"), help="default: MYSTORE_TARGET, else local"
    )
    parser.add_argument("--force-rerun", action="store_true", help="submit every step afresh")
    parser.add_argument(
        "--summary-json", metavar="FILE", type=summary_file, help="also write the summary as JSON"
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="embedded default only (default: MYSTORE_LOCAL_DATA_DIR, else .local)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    from flows.cli import run_cli

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.start_date > args.end_date:
        parser.error(f"--start-date {args.start_date} is after --end-date {args.end_date}")
    return run_cli(
        args,
        history,
        date_range=(args.start_date, args.end_date),
        start_date=args.start_date,
        end_date=args.end_date,
    )


if __name__ == "__main__":
    from flows.cli import skip_the_final_collection_at_exit

    skip_the_final_collection_at_exit()
    sys.exit(main())
