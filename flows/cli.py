"""The command-line wrapper shared by the flows: settings, the embedded default, the summary.

Kept apart from the flows so a deployed run (which never touches the CLI) has no path that
starts a local stack: the embedded default is prepared here, before the flow starts, and
reaches the flow only as environment (endpoint URLs and zone paths).
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from flows.interrupts import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Terminated,
    ctrl_c_stops_once,
    end_by_sigterm,
    interrupted_message,
    lost_prefect_message,
    sigterm_unwinds,
)
from flows.preflight import PrefectApiError, check_prefect_api
from flows.settings import Settings
from flows.summary import STEP_COLUMNS, step_cells
from migrations.settings import ENDPOINT_VARIABLE, data_api_endpoint, describe_validation_error
from tasks.jobs import JobError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# The night passed, but a clean step had no raw partition for its date (allowed by
# MYSTORE_ALLOW_EMPTY_INPUT): distinct from 0 so a scheduler or script notices the day.
EXIT_NO_INPUT = 3


def skip_the_final_collection_at_exit() -> None:
    """Spare a command's process Python's last full garbage collection (entry points only).

    A night's process ends with what Prefect, pydantic, boto3 and rich built still alive,
    and the interpreter's shutdown collects it all: 0.82-0.86 s of an attached night
    (measured from the last exit handler to the process's end; 0.05 s frozen), for memory
    the operating system takes back anyway. ``gc.freeze()`` puts those objects out of the
    collector's reach. Registered before the run, it runs after the exit handlers the run
    registers (atexit runs the newest first); logging's, registered at import, still runs
    after it and flushes every handler. The night has drained Prefect's log and event
    workers and closed its files before it returns, so nothing waits on a finalizer.
    """
    atexit.register(gc.freeze)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Command-line options win over MYSTORE_* variables; both are validated together."""
    if getattr(args, "target", None):
        os.environ["MYSTORE_TARGET"] = args.target
    if getattr(args, "data_dir", None):
        os.environ["MYSTORE_LOCAL_DATA_DIR"] = args.data_dir
    return Settings()


def run_cli(
    args: argparse.Namespace,
    flow_fn: Callable[..., Any],
    *,
    nightly: bool = False,
    date_range: tuple[date, date] | None = None,
    **flow_kwargs: Any,
) -> int:
    """Validate settings, prepare the embedded default when targeted, run, print, exit code.

    ``nightly`` runs pick their logical date here (locally: the next night not yet loaded,
    whose sample data is generated first); other flows get their parameters as given, and
    name the days they read in ``date_range`` so the embedded default can refuse a range
    its sample data cannot have before starting anything.
    """
    # The embedded default is offline: the temporary Prefect server must not phone home.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # emoji=False: ARNs hold ":secret:", which rich would otherwise draw as an emoji.
    console = Console(emoji=False)
    if not console.is_terminal:
        console = Console(width=160, emoji=False)  # logs and CI: keep ids on one line
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        console.print(f"[red]Invalid settings:[/red] {describe_validation_error(exc)}")
        return EXIT_USAGE
    if nightly:
        try:
            settings.check_clean_reports()
        except ValueError as exc:
            console.print(f"[red]Invalid settings:[/red] {exc}")
            return EXIT_USAGE
    flow_kwargs["force_rerun"] = bool(getattr(args, "force_rerun", False))
    started, state = False, None  # the flow was called; its final state
    api_url = None  # the Prefect API the flow ran against (for the message if it is lost)
    try:
        try:
            check_prefect_api()
        except PrefectApiError as exc:
            console.print(f"[red]Prefect:[/red] {exc}")
            return EXIT_FAILED
        with sigterm_unwinds(), ctrl_c_stops_once(), ExitStack() as resources:
            prepared = None
            night = getattr(args, "date", None)
            endpoint = data_api_endpoint()
            if settings.target == "local" and endpoint is not None:
                # Someone else serves the warehouse (e.g. `python -m local serve`): use it as
                # given, and leave its sample data and migrations to whoever runs it.
                console.print(f"Data API endpoint from {ENDPOINT_VARIABLE}: {endpoint}")
            elif settings.target == "local":
                # Import-contract exception: the CLI entry point may start the embedded default.
                from local.embedded import prepare_embedded

                console.print(f"Embedded default: local stack in {settings.local_data_dir}")
                # The stack exports its endpoint for this run only: a later command in the same
                # process must not mistake it for an endpoint the user gave.
                resources.callback(_restore_environ, dict(os.environ))
                try:
                    prepared = resources.enter_context(
                        prepare_embedded(
                            settings,
                            night if nightly else None,
                            console=console,
                            nightly=nightly,
                            date_range=date_range,
                        )
                    )
                except ValueError as exc:  # dates the sample data cannot have (absurd dates)
                    what = "night" if nightly else "run"
                    console.print(f"[red]Cannot prepare the {what}:[/red] {exc}")
                    return EXIT_USAGE
                except OSError as exc:  # data dir in use, PostgreSQL or Prefect did not start
                    console.print(f"[red]Local stack:[/red] {exc}")
                    return EXIT_FAILED
                except JobError as exc:  # the migration check's statements: warehouse down
                    console.print(f"[red]Local warehouse:[/red] {exc}")
                    return EXIT_FAILED
                night = prepared.logical_date
                resources.enter_context(_results_in(settings.local_data_dir))
                if prepared.prefect_api_url is not None:
                    resources.enter_context(_use_prefect_server(prepared.prefect_api_url))
            if nightly and night is not None:
                flow_kwargs["logical_date"] = night
            from prefect.settings import PREFECT_API_URL

            api_url = PREFECT_API_URL.value()
            started = True
            state = flow_fn(**flow_kwargs, return_state=True)
            result = state.result(raise_on_failure=False)
            if prepared is not None and nightly and state.is_completed():
                prepared.mark_done()
            if prepared is not None and prepared.prefect_ui_url is not None:
                console.print(
                    "Prefect UI: "
                    f"{prepared.prefect_ui_url}/runs/flow-run/{state.state_details.flow_run_id}"
                )
                if prepared.stack is not None:
                    console.print(prepared.kept_running_hint(), markup=False, soft_wrap=True)
    except KeyboardInterrupt:
        console.print(interrupted_message(started, state, "night" if nightly else "run"))
        return EXIT_INTERRUPTED
    except Terminated:  # the stack has stopped: now end as the signal would have
        console.print(interrupted_message(started, state, "night" if nightly else "run", "SIGTERM"))
        end_by_sigterm()
        return EXIT_TERMINATED  # not reached: the signal ends the process
    except httpx.TransportError as exc:  # Prefect's client gave up on its API mid-run
        console.print(lost_prefect_message(exc, "night" if nightly else "run", api_url))
        return EXIT_FAILED
    summary = getattr(result, "summary", result)
    if isinstance(summary, Mapping):
        print_summary(console, summary)
        if getattr(args, "summary_json", None):
            Path(args.summary_json).write_text(json.dumps(summary, indent=1, default=str) + "\n")
    if state.is_completed():
        if isinstance(summary, Mapping) and summary.get("no_input"):
            return EXIT_NO_INPUT
        return EXIT_OK
    console.print(f"[red]Run failed:[/red] {result}")
    return EXIT_FAILED


def print_summary(console: Console, summary: Mapping[str, Any]) -> None:
    verdict = str(summary.get("verdict") or ("succeeded" if summary.get("succeeded") else "FAILED"))
    colour = "red" if verdict == "FAILED" else "yellow" if summary.get("no_input") else "green"
    verdict = f"[{colour}]{verdict}[/{colour}]"
    title = f"{summary.get('pipeline', 'run')} {summary.get('logical_date', '')} ({summary.get('target', '')}): {verdict}"
    table = Table(title=title, title_justify="left")
    for column in STEP_COLUMNS:
        table.add_column(column, justify="right" if column in ("duration", "rows") else "left")
    for step in summary.get("steps", []):
        name, status, duration, rows, detail = step_cells(step)
        table.add_row(name, _status_markup(status), duration, rows, detail)
    console.print(table)
    warehouse = summary.get("warehouse") or {}
    if warehouse:
        console.print("Warehouse: " + ", ".join(f"{k} {v:,}" for k, v in warehouse.items()))
    calls = summary.get("api_calls") or {}
    if calls:
        detail = ", ".join(f"{op} {n}" for op, n in calls.items())
        console.print(f"API calls: {sum(calls.values())} ({detail})")
    if summary.get("no_input_headline"):
        console.print(f"[yellow]{summary['no_input_headline']}[/yellow]")
    if summary.get("error"):
        console.print(f"[red]Error:[/red] {summary['error']}")


def _status_markup(status: str) -> str:
    colour = {
        "succeeded": "green",
        "reattached": "cyan",
        "failed": "red",
        "skipped": "yellow",
        "no input": "yellow",
    }
    return f"[{colour.get(status, 'white')}]{status}[/]"


@contextmanager
def _use_prefect_server(api_url: str) -> Iterator[None]:
    """Run the flow against the data dir's Prefect server instead of a temporary one.

    Prefect reads its settings into a context when it is imported, so changing
    ``os.environ`` alone is not enough for this process; subprocesses get the variable.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    os.environ["PREFECT_API_URL"] = api_url
    with temporary_settings(
        {PREFECT_API_URL: api_url, PREFECT_UI_URL: api_url.removesuffix("/api")}
    ):
        try:
            yield
        finally:
            _drain_prefect_workers()


@contextmanager
def _results_in(data_dir: Path) -> Iterator[None]:
    """Keep this night's Prefect results (statement checkpoints, cached task results) in the
    data dir, next to its Prefect server, unless the user chose a results folder.

    In Prefect's default, ``~/.prefect/storage``, every data dir shared them: a fresh data
    dir's first nights found the checkpoints of another data dir's same nights, which the
    flow verifies against the Data API and discards with a warning per step.
    """
    from prefect.settings import PREFECT_HOME, PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    if PREFECT_LOCAL_STORAGE_PATH.value() != PREFECT_HOME.value() / "storage":
        yield  # set by the user (environment or profile)
        return
    path = data_dir.expanduser().resolve() / "prefect" / "storage"
    saved = os.environ.get("PREFECT_LOCAL_STORAGE_PATH")
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(path)  # for subprocesses
    try:
        with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: path}):
            yield
    finally:
        if saved is None:
            os.environ.pop("PREFECT_LOCAL_STORAGE_PATH", None)
        else:
            os.environ["PREFECT_LOCAL_STORAGE_PATH"] = saved


def _drain_prefect_workers() -> None:
    """Send buffered logs and events now, before the process exits: a worker that exits
    with items left retries them against a server that may be gone by then (`local down`)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


def _restore_environ(saved: Mapping[str, str]) -> None:
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update(saved)
