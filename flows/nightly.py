"""The nightly run: clean the raw zone with Glue, then load the warehouse, then check it.

``python -m flows.nightly`` with no AWS configuration runs one night on the embedded
default (a local warehouse and a local AWS endpoint); ``--target aws`` (or
``MYSTORE_TARGET=aws``) runs the same flow against Glue and Redshift. Deployed runs use
``flows/nightly.py:nightly`` from prefect.yaml.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import FlowRun
from prefect.states import Completed, State
from pydantic import Field

from flows.hooks import night_of, stop_hook
from flows.pipeline import Pipeline, nightly_pipeline
from flows.runner import run_pipeline
from flows.runtime import Runtime, default_logical_date
from flows.settings import Settings
from flows.summary import NO_INPUT_STATE_NAME, NightSummary

# A date parameter's JSON schema says ``format: date``, which Prefect's server does not
# check when it creates a run (its validator runs without a format checker); a pattern it
# does check, so a deployment with enforce_parameter_schema refuses "not-a-date" at run
# creation (409 naming the field) instead of the worker failing later. A well-formed but
# impossible day (2026-02-30) still reaches the worker, whose validation names it.
ISO_DATE_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
IsoDate = Annotated[date, Field(json_schema_extra={"pattern": ISO_DATE_PATTERN})]


def _nightly_of(flow_run: FlowRun) -> tuple[Pipeline, date]:
    return nightly_pipeline(Settings().glue_job_name), night_of(flow_run)


@flow(
    name="mystore-nightly",
    log_prints=False,
    validate_parameters=True,
    on_cancellation=[stop_hook(_nightly_of)],
    on_crashed=[stop_hook(_nightly_of)],
)
def nightly(
    logical_date: IsoDate | None = None,
    force_rerun: bool = False,
    wait_mode: Literal["poll", "suspend"] | None = None,
) -> dict[str, Any] | State[dict[str, Any]]:
    """Run one night of the MyStore ELT.

    Args:
        logical_date: the night to load (the data's date). Defaults to the day before the
            scheduled start, so a late or retried run keeps its night.
        force_rerun: submit every step afresh even when an earlier run of the same night
            finished; without it, finished steps are reattached, never run twice.
        wait_mode: poll (wait in the flow process) or suspend (a deployed run holds no
            process while Glue and the warehouse work; ``flows.resume_waiting`` resumes
            it); default MYSTORE_WAIT_MODE, else poll. CLI runs always poll.
    """
    night = logical_date or default_logical_date()
    refuse_future_night(night)  # before any work: a night is loaded after its day ends
    settings = Settings()
    logger = get_run_logger()
    logger.info(
        "Night %s on target %r (force_rerun=%s)", night.isoformat(), settings.target, force_rerun
    )
    runtime = Runtime.from_settings(settings, check_access=True, logger=logger)
    summary = run_pipeline(
        nightly_pipeline(settings.glue_job_name),
        runtime,
        night,
        force=force_rerun,
        wait_mode=wait_mode,
    )
    return final_state(summary)


def final_state(summary: NightSummary) -> dict[str, Any] | State[dict[str, Any]]:
    """The night's summary as the flow's result; a night that passed with a step of no
    input ends ``Completed(name="NoInput")`` with the headline as its message, so the run
    page does not show it as a plain green night."""
    headline = summary.no_input_headline()
    if headline is None:
        return summary.as_dict()
    return Completed(data=summary.as_dict(), name=NO_INPUT_STATE_NAME, message=headline)


def refuse_future_night(night: date, today: date | None = None) -> None:
    """A logical date after today (UTC) has no complete data yet: refuse it, naming both."""
    today = today or datetime.now(UTC).date()
    if night > today:
        raise ValueError(
            f"logical date {night.isoformat()} is in the future (today is {today.isoformat()} "
            "UTC); a night can be loaded once its day has begun, normally the day after"
        )


def parse_date(text: str) -> date:
    try:
        night = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in the form YYYY-MM-DD") from None
    try:
        refuse_future_night(night)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return night


def summary_file(text: str) -> Path:
    """``--summary-json``: a file whose folder exists, checked before the run, because the
    summary is written after it (a typo used to end a successful night in a traceback)."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; give a file name in it")
    if not path.resolve().parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: the folder {path.parent} does not exist")
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flows.nightly",
        description=(
            "Run one night of the MyStore ELT: the Glue clean job for every table, then "
            "CALL stg_mystore.sp_run_incremental_load() through the Redshift Data API, then "
            "data-quality checks. With no AWS configuration it runs on the embedded default "
            "(local warehouse + local AWS endpoint under --data-dir), generating sample data "
            "on the first run and the next day's data on each later run."
        ),
        epilog=(
            "Configuration comes from MYSTORE_* environment variables (see README). "
            "Exit status: 0 when every step succeeded, 1 when a step failed (its name and the "
            "real Glue or Redshift error are printed), 2 for bad arguments or settings, 3 when "
            "the night passed with no input: a clean step found no raw partition for the date "
            "and MYSTORE_ALLOW_EMPTY_INPUT=true let it (without that setting such a night "
            "fails with 1), 130 when Ctrl-C stopped it (what it had started is stopped first; "
            "run the same command again to finish the night); SIGTERM stops it the same way, "
            "then the process ends by that signal (a shell shows 143). A Prefect API set in "
            "PREFECT_API_URL that does not answer fails with 1 before anything starts."
        ),
    )
    parser.add_argument(
        "--date",
        type=parse_date,
        metavar="YYYY-MM-DD",
        help="logical date to load (default: local, the next night not yet loaded; aws, yesterday)",
    )
    parser.add_argument(
        "--target",
        choices=("local", "aws"),
        help="where to run (default: MYSTORE_TARGET, else local)",
    )
    parser.add_argument(
        "--force-rerun",
        action="store_true",
        help="submit every step afresh instead of reattaching to an earlier run of the same night",
    )
    parser.add_argument(
        "--summary-json",
        metavar="FILE",
        type=summary_file,
        help="also write the run's summary (steps, durations, rows, changes, API calls) as JSON",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=(
            "embedded default only: where the local stack keeps its data (default:"
            " MYSTORE_LOCAL_DATA_DIR, else .local)"
        ),
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    from flows.cli import run_cli

    args = build_parser().parse_args(argv)
    return run_cli(args, nightly, nightly=True)


if __name__ == "__main__":
    from flows.cli import skip_the_final_collection_at_exit

    skip_the_final_collection_at_exit()
    sys.exit(main())
