"""The command-line wrapper shared by the flows: settings, the embedded default, the summary.

Kept apart from the flows so a deployed run (which never touches the CLI) has no path that
starts a local stack: the embedded default is prepared here, before the flow starts, and
reaches the flow only as environment (endpoint URLs and zone paths).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from flows.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Command-line options win over MYSTORE_* variables; both are validated together."""
    if getattr(args, "target", None):
        os.environ["MYSTORE_TARGET"] = args.target
    if getattr(args, "data_dir", None):
        os.environ["MYSTORE_LOCAL_DATA_DIR"] = args.data_dir
    return Settings()


def run_cli(args: argparse.Namespace, flow_fn: Callable[..., Any], **flow_kwargs: Any) -> int:
    console = Console(stderr=False)
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        console.print(f"[red]Invalid settings:[/red] {_validation_message(exc)}")
        return EXIT_USAGE
    with ExitStack() as resources:
        night = getattr(args, "date", None)
        if settings.target == "local":
            from local.embedded import prepare_embedded

            console.print(
                f"Embedded default: starting the local stack in {settings.local_data_dir}"
            )
            prepared = resources.enter_context(prepare_embedded(settings, night, console=console))
            night = prepared.logical_date
            flow_kwargs = {**flow_kwargs, **prepared.flow_overrides}
        if night is not None:
            flow_kwargs.setdefault("logical_date", night)
        if hasattr(args, "force_rerun"):
            flow_kwargs.setdefault("force_rerun", args.force_rerun)
        state = flow_fn(**flow_kwargs, return_state=True)
        result = state.result(raise_on_failure=False)
    summary = getattr(result, "summary", result)
    if isinstance(summary, Mapping):
        print_summary(console, summary)
    if state.is_completed():
        return EXIT_OK
    console.print(f"[red]Run failed:[/red] {result}")
    return EXIT_FAILED


def print_summary(console: Console, summary: Mapping[str, Any]) -> None:
    verdict = "[green]succeeded[/green]" if summary.get("succeeded") else "[red]FAILED[/red]"
    title = f"{summary.get('pipeline', 'run')} {summary.get('logical_date', '')} ({summary.get('target', '')}): {verdict}"
    table = Table(title=title, title_justify="left")
    for column in ("step", "status", "duration", "rows", "detail"):
        table.add_column(column, justify="right" if column in ("duration", "rows") else "left")
    for step in summary.get("steps", []):
        rows = step.get("rows")
        table.add_row(
            step["name"],
            _status_markup(step["status"]),
            f"{step.get('duration_seconds', 0.0):.1f}s",
            "" if rows is None else f"{rows:,}",
            step.get("detail", ""),
        )
    console.print(table)
    warehouse = summary.get("warehouse") or {}
    if warehouse:
        console.print("Warehouse: " + ", ".join(f"{k} {v:,}" for k, v in warehouse.items()))
    calls = summary.get("api_calls") or {}
    if calls:
        detail = ", ".join(f"{op} {n}" for op, n in calls.items())
        console.print(f"API calls: {sum(calls.values())} ({detail})")
    if summary.get("error"):
        console.print(f"[red]Error:[/red] {summary['error']}")


def _status_markup(status: str) -> str:
    colour = {"succeeded": "green", "reattached": "cyan", "failed": "red", "skipped": "yellow"}
    return f"[{colour.get(status, 'white')}]{status}[/]"


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
        for err in exc.errors()
    )
