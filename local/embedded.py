"""The embedded default: everything a night needs on a laptop, prepared before the flow runs.

It starts the local stack, points standard AWS clients at it through the environment,
makes sure the raw zone holds the night's sample data, and applies the migrations. The
flow itself then runs exactly as on AWS. Which nights ran is kept in
``<data dir>/nights.json`` so that each plain ``python -m flows.nightly`` loads the next
night and the warehouse visibly evolves.

When ``python -m local up`` (or ``serve``) already runs a stack on the data dir, the night
attaches to it (its endpoint and Prefect server) and leaves it running; otherwise it starts
a stack of its own and stops it at the end, except the data dir's Prefect server: that one
is reused when an earlier night left it running, else started, and left running for the
next night (``python -m local down`` stops it), so no night after the first waits for it.
The stack's warm Spark driver is started at once, so it comes up while the night prepares.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console

from flows.settings import Settings
from local.lease import (
    ATTACHABLE_KINDS,
    StackInfo,
    StackInUseError,
    data_dir_option,
    in_use_message,
    live_stack,
    make_data_dir,
    refuse_an_unusable_data_dir,
    when_owner_ends,
)
from local.prefect_server import START_TIMEOUT_SECONDS, configured_api_url
from local.sample_data import TRUTH_FILE, GenerateConfig, day_is_complete, generate
from local.stack import LocalStack, client_env
from local.warehouse.dialect import LOCAL_MIGRATION_PARAMETERS
from local.warehouse.redshift_compat import preflight
from migrations import format_report, migrate
from tasks.aws import aws_client
from tasks.redshift_data import RedshiftTarget

NIGHTS_FILE = "nights.json"
SAMPLE_DATA_LOCK = ".sample_data.lock"  # held while a run writes raw sample data
STACK_ENDED_EXIT = 1  # the CLI's "failed": the night did not load
LOCAL_GLUE_POLL_MAX_SECONDS = "0.5"
LOCAL_TARGET = RedshiftTarget(database="dev", cluster_identifier="local", db_user="awsuser")


@dataclass
class PreparedNight:
    logical_date: date
    data_dir: Path
    endpoint_url: str
    # The local Prefect server's API for this run; None when the user's own PREFECT_API_URL
    # (or profile) is kept, or the attached stack runs without one.
    prefect_api_url: str | None = None
    # The stack this run started (stopped at the end), or None when it attached to one.
    stack: LocalStack | None = None

    @property
    def prefect_ui_url(self) -> str | None:
        return self.prefect_api_url.removesuffix("/api") if self.prefect_api_url else None

    def kept_running_hint(self) -> str:
        """What a standalone night leaves running, with the commands for its data dir."""
        option = data_dir_option(self.data_dir)
        return (
            f"The Prefect server keeps running for the next night; `python -m local down{option}` "
            f"stops it.\n(`python -m local up{option}` keeps the warehouse and Spark up too; "
            "nights then attach to it.)"
        )

    def mark_done(self) -> None:
        """Remember a night that succeeded, so the next plain run moves on to the next one."""
        done = completed_nights(self.data_dir)
        done.add(self.logical_date)
        (self.data_dir / NIGHTS_FILE).write_text(
            json.dumps(sorted(d.isoformat() for d in done), indent=1) + "\n"
        )


def completed_nights(data_dir: Path) -> set[date]:
    path = data_dir / NIGHTS_FILE
    if not path.exists():
        return set()
    try:
        return {date.fromisoformat(d) for d in json.loads(path.read_text())}
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{path} is not a JSON list of YYYY-MM-DD dates; delete it to start over"
        ) from exc


def sample_config(data_dir: Path, settings: Settings) -> GenerateConfig:
    """The generator's configuration: the one already used under data_dir, so regenerated
    days stay identical, else the defaults scaled by the settings."""
    truth = data_dir / TRUTH_FILE
    if truth.exists():
        saved = json.loads(truth.read_text())["config"]
        saved["start_date"] = date.fromisoformat(saved["start_date"])
        return GenerateConfig(**saved)
    defaults = GenerateConfig()
    return replace(
        defaults,
        customers=settings.local_customers or defaults.customers,
        sales_per_day=(
            defaults.sales_per_day
            if settings.local_sales_per_day is None
            else settings.local_sales_per_day
        ),
    )


def sample_size_not_used(config: GenerateConfig, settings: Settings) -> list[str]:
    """A sample size set for a data dir whose sample data exists is not used (its days must
    stay as loaded): one sentence per size asked and kept otherwise, for the CLI's terminal
    and a deployed run's log alike, instead of quietly loading another size."""
    asked = {
        "MYSTORE_LOCAL_CUSTOMERS": ("local_customers", config.customers, "customers"),
        "MYSTORE_LOCAL_SALES_PER_DAY": ("local_sales_per_day", config.sales_per_day, "sales/day"),
    }
    return [
        f"{variable}={value} is not used: this data dir's sample data has {kept:,} {what}, "
        "kept so that the nights already loaded stay true; a new --data-dir starts with the "
        "new size"
        for variable, (field, kept, what) in asked.items()
        if field in settings.model_fields_set and (value := getattr(settings, field)) != kept
    ]


def next_night(data_dir: Path, config: GenerateConfig, done: set[date] | None = None) -> date:
    """The night after the latest one loaded (``done``: the loaded nights, when already read)."""
    done = completed_nights(data_dir) if done is None else done
    return max(done) + timedelta(days=1) if done else config.start_date


def nights_not_loaded_before(night: date, done: set[date], config: GenerateConfig) -> list[date]:
    """The sample data's nights before ``night`` that never loaded: an explicit ``--date``
    that skips ahead leaves them out, and later plain runs go on after the latest night."""
    days = (night - config.start_date).days
    return [
        d for d in (config.start_date + timedelta(days=i) for i in range(days)) if d not in done
    ]


def say_which_nights_never_loaded(
    done: set[date], night: date, config: GenerateConfig, console: Console
) -> list[date]:
    """Warn when sample-data nights before ``night`` never loaded (and return them): the
    night still runs, and succeeds, but the warehouse is not what the sample data says."""
    skipped = nights_not_loaded_before(night, done, config)
    if skipped:
        console.print(
            f"[yellow]Nights not loaded:[/yellow] {describe_nights(skipped)} ({len(skipped)}"
            " in all) come before this one in the sample data but never loaded, so the"
            " warehouse misses their changes. Load them with --date, oldest first; a sale"
            " they bring more than 7 days older than the newest sale loaded then fails"
            " check_sales_reconciled, and `python -m flows.history` loads its dates."
        )
    return skipped


def describe_nights(nights: list[date], most: int = 3) -> str:
    """``nights`` (sorted) as runs of consecutive days: ``2026-11-05 to 2026-11-07, ...``."""
    runs: list[list[date]] = []
    for night in nights:
        if runs and night - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(night)
        else:
            runs.append([night])
    text = [r[0].isoformat() if len(r) == 1 else f"{r[0]} to {r[-1]}" for r in runs[:most]]
    if len(runs) > most:
        text.append(f"and {len(runs) - most} more")
    return ", ".join(text)


def refuse_night_before_sample_data(night: date, config: GenerateConfig) -> None:
    """A night the sample data cannot have is refused before anything starts: a typo in
    ``--date`` should not cost a stack's start (and leave a Prefect server running)."""
    if night < config.start_date:
        raise ValueError(
            f"--date {night.isoformat()} is before the sample data's first day"
            f" {config.start_date.isoformat()}"
        )


def refuse_range_before_sample_data(start: date, end: date, config: GenerateConfig) -> None:
    """A backfill range that ends before the sample data's first day has no sales to stage:
    refused before anything starts, as such a night is (the load would fail anyway, after a
    stack's start)."""
    if end < config.start_date:
        raise ValueError(
            f"--end-date {end.isoformat()} is before the sample data's first day"
            f" {config.start_date.isoformat()}: {start.isoformat()}..{end.isoformat()}"
            " has no sales to load"
        )


def ensure_sample_data(
    data_dir: Path, night: date, config: GenerateConfig, console: Console
) -> None:
    """Generate raw data up to ``night`` unless its partitions are already complete, going
    on from the days an earlier night generated (their state is kept in the data dir).

    Runs attached to one stack may prepare at once: one generates while the others wait on
    the data dir's sample-data lock, then find the day complete. Without it a second run
    saw the first one's half-written folder, ran its clean steps on it and failed, or
    deleted the first one's temporary files under it."""
    refuse_night_before_sample_data(night, config)
    if day_is_complete(data_dir, night):
        return
    with _sample_data_lock(data_dir, console):
        if not day_is_complete(data_dir, night):
            _generate_up_to(data_dir, night, config, console)


@contextmanager
def _sample_data_lock(data_dir: Path, console: Console) -> Iterator[None]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / SAMPLE_DATA_LOCK).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            console.print("Waiting for another run of this data dir to write its sample data")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _generate_up_to(data_dir: Path, night: date, config: GenerateConfig, console: Console) -> None:
    days = (night - config.start_date).days + 1

    def announce(kept: int) -> None:
        first = config.start_date + timedelta(days=kept)
        console.print(
            f"Generating sample raw data: {days - kept} day(s) from {first.isoformat()}"
            + (f" (the {kept} day(s) before kept)" if kept else "")
            + f", {config.customers:,} customers, {config.sales_per_day:,} sales/day"
        )

    # A spinner naming the day being written, in a terminal only (a log gets the line above):
    # many days, or a large --customers, take minutes.
    with console.status("Generating sample raw data") as status:

        def on_day(index: int) -> None:
            day = config.start_date + timedelta(days=index)
            status.update(
                f"Generating sample raw data: {day.isoformat()} (day {index + 1} of {days})"
            )

        generate(
            replace(config, days=days),
            data_dir,
            resume=True,
            before_writing=announce,
            on_day=on_day,
        )


def point_clients_at(endpoint_url: str, data_dir: Path) -> None:
    """Export the stack's endpoint (and the clean job's report folder) for this process."""
    os.environ.update(client_env(endpoint_url))
    os.environ.setdefault("MYSTORE_GLUE_REPORT_PATH", str(data_dir / "reports"))
    # GetJobRun on the local endpoint costs a millisecond: poll often, notice a run's end soon.
    os.environ.setdefault("MYSTORE_GLUE_POLL_MAX_SECONDS", LOCAL_GLUE_POLL_MAX_SECONDS)


def prepare_warehouse(
    endpoint_url: str,
    data_dir: Path,
    night: date | None,
    config: GenerateConfig,
    console: Console,
) -> None:
    """Make sure ``night``'s raw data exists (when given) and the warehouse is migrated;
    both are no-ops when already done, so a resumed deployed run may repeat them."""
    if night is not None:
        ensure_sample_data(data_dir, night, config, console)
    client = aws_client("redshift-data", endpoint_url=endpoint_url)
    report = migrate(
        client,
        LOCAL_TARGET,
        parameters=LOCAL_MIGRATION_PARAMETERS,
        check=preflight,
        log=lambda line: None,
    )
    console.print("Migrations: " + format_report(report).splitlines()[-1])


def _end_the_attached_night(owner: StackInfo) -> None:
    """The stack an attached night runs on is gone (``local down``, or its process killed):
    its warehouse, endpoint, Spark and Prefect server went with it, so nothing the night
    waits on can answer. End the process now, saying so, instead of letting every client
    retry against closed ports for minutes. Nothing of the night's is left to clean up here:
    its work ran in the stack's processes, and the night is not marked loaded."""
    with suppress(Exception):
        sys.stdout.flush()
    message = (
        f"\nLocal stack: {owner.describe()} ended while this run was going (`python -m local"
        " down`, or the process was killed), and its warehouse, endpoint, Spark and Prefect"
        " server with it: the run cannot finish, and a night is not marked loaded. Start the"
        f" stack again (`python -m local up{data_dir_option(Path(owner.data_dir))}`) and run the"
        " command again.\n"
    )
    os.write(2, message.encode())
    os._exit(STACK_ENDED_EXIT)


@contextmanager
def prepare_embedded(
    settings: Settings,
    requested: date | None,
    *,
    console: Console,
    nightly: bool = True,
    date_range: tuple[date, date] | None = None,
) -> Iterator[PreparedNight]:
    """Attach to the data dir's running stack or start one, export its endpoint, migrate;
    for a nightly, also pick the night (``requested`` or the next one not yet loaded) and
    make sure its raw data exists. A ``date_range`` (a backfill's days) wholly before the
    sample data is refused first, as a night before it is.

    Raises ``StackInUseError`` when another standalone run owns the data dir: its stack
    stops when that run ends, so attaching to it could cut this run off midway.
    """
    data_dir = settings.local_data_dir.expanduser().resolve()
    named = f"the data dir {data_dir} (--data-dir or MYSTORE_LOCAL_DATA_DIR)"
    refuse_an_unusable_data_dir(data_dir, named)
    config = sample_config(data_dir, settings)
    for notice in sample_size_not_used(config, settings):
        console.print(f"[yellow]{notice}[/yellow]")
    done = completed_nights(data_dir)
    night = requested or next_night(data_dir, config, done)
    if nightly:
        refuse_night_before_sample_data(night, config)
        say_which_nights_never_loaded(done, night, config, console)
    if date_range is not None:
        refuse_range_before_sample_data(*date_range, config)
    make_data_dir(data_dir, named)
    user_prefect = configured_api_url()
    live = live_stack(data_dir, wait_ready_seconds=START_TIMEOUT_SECONDS)
    if live is not None and (
        live.kind not in ATTACHABLE_KINDS or not live.ready or live.endpoint_url is None
    ):
        raise StackInUseError(in_use_message(data_dir, live))
    with ExitStack() as resources:
        if live is not None:
            assert live.endpoint_url is not None
            console.print(f"Local stack: attached to {live.describe()}")
            resources.enter_context(when_owner_ends(live, _end_the_attached_night))
            prepared = PreparedNight(night, data_dir, live.endpoint_url, live.prefect_api_url)
        else:
            stack = resources.enter_context(
                LocalStack.start(
                    data_dir, kind="nightly", with_prefect=user_prefect is None, keep_prefect=True
                )
            )
            console.print(f"Local AWS endpoint: {stack.endpoint_url}")
            if stack.prefect is not None and stack.prefect.reused:
                console.print(
                    f"Prefect server: reusing the one an earlier night left running on"
                    f" {stack.prefect.ui_url} (pid {stack.prefect.pid})"
                )
            prepared = PreparedNight(night, data_dir, stack.endpoint_url, stack=stack)
        if user_prefect is not None:
            prepared.prefect_api_url = None
        point_clients_at(prepared.endpoint_url, data_dir)
        if prepared.stack is not None:
            prepared.stack.prewarm_spark()  # after point_clients_at: the driver's key has it
        prepare_warehouse(
            prepared.endpoint_url, data_dir, night if nightly else None, config, console
        )
        if prepared.stack is not None:
            # The Prefect server started with the stack; sample data and migrations ran
            # while it came up.
            prepared.stack.wait_ready()
            if prepared.stack.prefect is not None:
                prepared.prefect_api_url = prepared.stack.prefect.api_url
        yield prepared
