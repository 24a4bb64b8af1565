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
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from flows.preflight import PrefectApiError, check_prefect_api
from flows.settings import Settings
from flows.summary import STEP_COLUMNS, step_cells
from migrations.settings import ENDPOINT_VARIABLE, data_api_endpoint, describe_validation_error

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# The night passed, but a clean step had no raw partition for its date (allowed by
# MYSTORE_ALLOW_EMPTY_INPUT): distinct from 0 so a scheduler or script notices the day.
EXIT_NO_INPUT = 3
# 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM
# A SIGINT this soon after the first is the same Ctrl-C arriving twice: `uv run` with no
# terminal (a script, an IDE, CI) forwards to its child the SIGINT that the child's process
# group was sent too; a quick double press is the same.
SAME_CTRL_C_SECONDS = 1.0


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


@contextmanager
def ctrl_c_stops_once() -> Iterator[None]:
    """The first Ctrl-C stops the run, as Python's default does (KeyboardInterrupt); any
    later one is refused until the block is left, so it cannot cut short the stop that the
    first one started: the flow's stop path stopping the Glue runs and statements the run
    waits on (on AWS they would otherwise run on, and bill, with nobody waiting for them),
    its hooks, and the embedded stack's shutdown. Those take seconds and have timeouts of
    their own. A refused press after the first second says so on stderr; Ctrl-\\ (SIGQUIT)
    still ends the process at once.

    Only in the main thread, and only where SIGINT has Python's default handler (a command
    started in the background with SIGINT ignored keeps ignoring it).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    presses: list[float] = []

    def on_sigint(signum: int, frame: Any) -> None:
        presses.append(time.monotonic())
        if len(presses) == 1:
            raise KeyboardInterrupt
        if presses[-1] - presses[0] > SAME_CTRL_C_SECONDS:
            # os.write, not print: this may run while the main thread is inside a print.
            os.write(2, _STILL_STOPPING)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


_STILL_STOPPING = (
    b"Still stopping what the run started (its Glue runs and statements); this takes "
    b"seconds. Ctrl-\\ quits at once and may leave them running.\n"
)


class Terminated(BaseException):
    """SIGTERM arrived (a scheduler's stop, `kill`, `timeout`), raised in the main thread so
    that the run leaves through every ``finally``: ``run_cli`` then ends the process by the
    signal itself, as the default action would have."""


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Turn the first SIGTERM into ``Terminated``; later ones are ignored while it unwinds.

    With Python's default action the process died at once: Prefect's engine catches the
    signal, records the run Crashed and stops its work, then sends it again to the default
    action, so the embedded stack's own shutdown never ran and its PostgreSQL server kept
    running after every stopped night. Prefect now sends it to this handler instead. Only
    in the main thread, and only where SIGTERM has the default action.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    received: list[int] = []

    def on_sigterm(signum: int, frame: Any) -> None:
        if not received:
            received.append(signum)
            raise Terminated

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def end_by_sigterm() -> None:
    """End the process as SIGTERM's default action does (a scheduler sees the signal)."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def interrupted_message(started: bool, state: Any, what: str, how: str = "Ctrl-C") -> str:
    """What the command prints after a Ctrl-C (or SIGTERM), instead of a traceback: what
    was stopped, and that running it again is safe."""
    if not started:
        return f"[red]Interrupted[/red] ({how}) before the {what} started: nothing submitted."
    if state is not None:  # the flow had ended; only what followed it was cut short
        return (
            f"[yellow]Interrupted[/yellow] ({how}) after the {what} ended "
            f"({state.name}); its summary is in the Prefect UI."
        )
    return (
        f"[red]Interrupted[/red] ({how}): the {what} stopped the Glue runs and statements it "
        "had started and is Crashed in Prefect. Run the same command again to finish it: "
        "steps that had finished are reattached, not run twice."
    )


def lost_prefect_message(exc: BaseException, what: str, api_url: str | None) -> str:
    """What the command prints when the Prefect API stopped answering during the run (after
    Prefect's client retried for about a minute), instead of the engine's traceback."""
    from prefect._internal.urls import strip_auth_from_url, strip_auth_from_urls_in_text

    url = strip_auth_from_url(api_url) if api_url else "(Prefect's temporary server)"
    reason = strip_auth_from_urls_in_text(f"{type(exc).__name__}: {exc}")
    return (
        f"[red]Prefect:[/red] the Prefect API at {url} stopped answering during the {what} "
        f"({reason}), so Prefect could not record how it ended. Nothing the {what} started is "
        "lost: once the server answers again, run the same command again to finish it; "
        "steps that had finished are reattached, not run twice."
    )


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
                    console.print(_KEPT_RUNNING)
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


_KEPT_RUNNING = (
    "The Prefect server keeps running for the next night; `python -m local down` stops it.\n"
    "(`python -m local up` keeps the warehouse and Spark up too; nights then attach to it.)"
)


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
