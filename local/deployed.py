"""The deployed flows on the embedded default: ``mystore-nightly-local`` and
``resume-waiting-local`` in prefect.yaml.

A deployed run of ``flows.nightly`` never prepares the embedded default (flows import
nothing of ``local/``): on AWS the warehouse and its data already exist. These two flows
are the laptop's deployment entrypoints. Each attaches to the stack ``python -m local up``
keeps running on the data dir (exports its endpoint, as a night started from the CLI
does) and then runs the product flow's own body, in this flow run (not as a subflow:
Prefect cannot suspend a subflow). The nightly also picks the night the way the CLI does
(the given ``logical_date``, else the next night not yet loaded), generates that night's
sample raw data if missing, migrates (once per flow run: a resumed execution skips both,
its first execution did them before suspending), and records the night as done when it
succeeds.

They start no stack of their own: a suspended run holds no process, so a stack that lived
only as long as the flow process would stop the warehouse under its own statements.
"""

from __future__ import annotations

import io
import logging
import shlex
from datetime import date
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import FlowRun
from prefect.flows import Flow
from prefect.states import State
from rich.console import Console

from flows.hooks import stop_run_work
from flows.nightly import IsoDate, nightly, refuse_future_night
from flows.resume_waiting import resume_waiting
from flows.runtime import Runtime
from flows.settings import Settings
from flows.waiting import is_resumed_execution
from local.embedded import (
    PreparedNight,
    next_night,
    point_clients_at,
    prepare_warehouse,
    sample_config,
    sample_size_not_used,
)
from local.lease import ATTACHABLE_KINDS, StackInUseError, in_use_message, live_stack
from local.prefect_server import START_TIMEOUT_SECONDS
from local.sample_data import GenerateConfig

log = logging.getLogger(__name__)


class NoLocalStackError(RuntimeError):
    """No ``python -m local up`` stack runs on the data dir; the message says how to start one."""


def attach_to_stack(settings: Settings) -> tuple[Path, str]:
    """Point this process's AWS clients at the stack running on the settings' data dir;
    its data dir and endpoint URL.

    Raises ``NoLocalStackError`` when none runs, ``StackInUseError`` when a standalone CLI
    night owns the data dir (its stack stops when that night ends).
    """
    if settings.target != "local":
        raise ValueError(
            f"MYSTORE_TARGET is {settings.target!r}; the *-local deployments run on the "
            "embedded default only (set MYSTORE_TARGET=local, or use the AWS deployments)"
        )
    data_dir = settings.local_data_dir.expanduser().resolve()
    live = live_stack(data_dir, wait_ready_seconds=START_TIMEOUT_SECONDS)
    if live is None:
        raise NoLocalStackError(
            f"no local stack runs on {data_dir}: start one with `python -m local up"
            f" --data-dir {shlex.quote(str(data_dir))}` (a deployed run attaches to it; it never"
            " starts its own)"
        )
    if live.kind not in ATTACHABLE_KINDS or not live.ready or live.endpoint_url is None:
        raise StackInUseError(in_use_message(data_dir, live))
    point_clients_at(live.endpoint_url, data_dir)
    return data_dir, live.endpoint_url


def local_night(settings: Settings, requested: date | None) -> date:
    """The CLI's rule: the requested night, else the next one not yet loaded on this data
    dir. Stable while a run is suspended: a night is recorded as done only at the end."""
    if requested is not None:
        return requested
    data_dir = settings.local_data_dir.expanduser().resolve()
    return next_night(data_dir, sample_config(data_dir, settings))


def _stop_local_night(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """``on_cancellation`` / ``on_crashed``: stop this run's own work (its work tags) on the
    stack, as the AWS deployments' hooks do (``flows.hooks.stop_run_work``)."""
    settings = Settings()
    attach_to_stack(settings)
    stop_run_work(
        Runtime.from_settings(settings),
        flow_run.id,
        reason=f"flow run {flow_run.name} is {state.name}",
    )


@flow(
    name="mystore-nightly",
    log_prints=False,
    validate_parameters=True,
    on_cancellation=[_stop_local_night],
    on_crashed=[_stop_local_night],
)
def nightly_local(
    logical_date: IsoDate | None = None,
    force_rerun: bool = False,
    wait_mode: Literal["poll", "suspend"] | None = None,
) -> dict[str, Any] | State[dict[str, Any]]:
    """Run one night of the MyStore ELT on the embedded default (``python -m local up``).

    Args:
        logical_date: the night to load. Defaults to the next night not yet loaded on this
            data dir (as `python -m flows.nightly` does); its sample raw data is generated
            when missing.
        force_rerun: submit every step afresh even when an earlier run of the same night
            finished; without it, finished steps are reattached, never run twice.
        wait_mode: poll (wait in the flow process) or suspend (hold no process while Glue
            and the warehouse work; resume-waiting-local or the local event path resumes
            it); default MYSTORE_WAIT_MODE, else poll.
    """
    logger = get_run_logger()
    settings = Settings()
    data_dir, endpoint_url = attach_to_stack(settings)
    night = local_night(settings, logical_date)
    refuse_future_night(night)
    if is_resumed_execution():  # its first execution prepared it before suspending
        logger.info("Local stack %s on %s: resumed, prepared before", endpoint_url, data_dir)
    else:
        console = Console(file=io.StringIO(), record=True, width=160, emoji=False)
        config = sample_config(data_dir, settings)
        warn_when_the_sample_size_is_kept(config, settings, logger)
        prepare_warehouse(endpoint_url, data_dir, night, config, console)
        logger.info(
            "Local stack %s on %s: %s", endpoint_url, data_dir, console.export_text().strip()
        )
    outcome = nightly.fn(logical_date=night, force_rerun=force_rerun, wait_mode=wait_mode)
    # a night of no input ends Completed(name="NoInput") carrying the summary (flows.nightly)
    summary = outcome.result() if isinstance(outcome, State) else outcome
    if summary.get("succeeded"):
        PreparedNight(night, data_dir, endpoint_url).mark_done()
    return outcome


def warn_when_the_sample_size_is_kept(
    config: GenerateConfig, settings: Settings, logger: logging.Logger | logging.LoggerAdapter[Any]
) -> None:
    """What the CLI prints on the terminal, as warnings in the run's log, where a deployed
    run's user looks: the worker's MYSTORE_LOCAL_* size is not used."""
    for notice in sample_size_not_used(config, settings):
        logger.warning(notice)


@flow(name="resume-waiting", log_prints=False)
def resume_waiting_local() -> dict[str, Any]:
    """One pass of ``resume-waiting`` against the stack ``python -m local up`` runs."""
    attach_to_stack(Settings())
    return resume_waiting.fn()
