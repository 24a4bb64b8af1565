"""Event-driven resume: "this statement (or Glue run) ended" becomes a Prefect event that a
Prefect automation answers by resuming the suspended flow run waiting on it.

Nothing of ours runs while the warehouse works. When a statement submitted with
``WithEvent=True`` ends, something tells this module (``emit_for_work``):

* on AWS, the EventBridge rule on "Redshift Data Statement Status Change" (and Glue "Glue
  Job State Change") whose target runs ``eventbridge_handler`` (deployments/eventbridge.py
  writes the rule and target);
* on the embedded default, the local endpoint: its Data API when a statement submitted with
  ``WithEvent`` ends, its Glue job runs whenever a run ends (as Glue always tells
  EventBridge); ``local/work_events.py``.

The bridge reads the suspended flow runs tagged with that work (``redshift-stmt:<id>`` /
``glue-run:<job>:<id>``, one filtered query) and posts one event per waiting run to the
Prefect API, with the run as a related resource of role ``waiter``. The automation
(``install_automation``, ``python -m flows.resume_waiting --install-automation``) resumes
"the flow run related to the triggering event": Prefect's ResumeFlowRun infers it as the
first ``prefect.flow-run.<id>`` among the event's resources, and ours has exactly one.

Why the lookup is here and not in the automation: a run's tags are set at runtime and are
not among the related resources of any event Prefect emits, and the Data API event names
only the statement. The flow run id must be found with a query, once per event.

Duplicate, late and out-of-order events are harmless: resuming a run that is not paused is
refused by the server (the automation's action fails, nothing changes), an event for a run
that has moved on finds no suspended run, and a resume that comes too early makes the run
look and suspend again. A lost event costs one interval of the ``resume-waiting`` poller,
which stays the safety net.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.events.actions import ResumeFlowRun
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import Event

from flows.waiting import WAITING_TAG, Work

STATEMENT_ENDED = "mystore.redshift-data.statement.ended"
GLUE_RUN_ENDED = "mystore.glue.job-run.ended"
WAITER_ROLE = "waiter"
STATUS_LABEL = "mystore.status"
AUTOMATION_NAME = "mystore-resume-when-work-ended"
# Statuses after which a statement / Glue run does nothing more: the only ones worth a resume.
STATEMENT_END_STATUSES = frozenset({"FINISHED", "FAILED", "ABORTED"})
GLUE_END_STATES = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED"})
# A run that tagged the work but had not reached Suspended when the work ended (it checked
# just before): the bridge looks again for this long, so that event is not lost.
SETTLE_SECONDS = 10.0
_SETTLE_POLL_SECONDS = 0.5
_LIVE_STATES = [StateType.PAUSED, StateType.RUNNING, StateType.PENDING]


class EventBridgeInputError(ValueError):
    """An EventBridge event this bridge cannot read; the message names what is missing."""


def resource_id(work: Work) -> str:
    if work.kind == "statement":
        return f"redshift-data.statement.{work.id}"
    return f"glue.job-run.{work.job_name}.{work.id}"


def work_event(
    work: Work,
    status: str,
    run: FlowRun,
    *,
    occurred: dt.datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> Event:
    """The event telling ``run`` that ``work`` ended with ``status``.

    ``event_id``: Prefect drops an event whose id it has seen, so a retried delivery of the
    same EventBridge event (derive the id from EventBridge's) is posted once.
    """
    resource = {
        "prefect.resource.id": resource_id(work),
        "prefect.resource.name": str(work),
        STATUS_LABEL: status,
    }
    related = {
        "prefect.resource.id": f"prefect.flow-run.{run.id}",
        "prefect.resource.role": WAITER_ROLE,
        "prefect.resource.name": run.name,
    }
    return Event(
        id=event_id or uuid.uuid4(),
        occurred=occurred or dt.datetime.now(dt.UTC),
        event=STATEMENT_ENDED if work.kind == "statement" else GLUE_RUN_ENDED,
        resource=resource,
        related=[related],
        payload={"status": status, "work": str(work)},
    )


def read_tagged_runs(client: SyncPrefectClient, work: Work) -> list[FlowRun]:
    """Paused, running or pending runs tagged with ``work`` and as waiting (a handful at
    most). A suspend-mode run tags itself waiting before it looks at its work
    (``flows.waiting.Suspender.settle``); a poll-mode run, which tags its work too but never
    suspends, is not waited for."""
    flt = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=_LIVE_STATES)),
        tags=FlowRunFilterTags(all_=[work.tag, WAITING_TAG]),
    )
    return list(client.read_flow_runs(flow_run_filter=flt, limit=200))


def is_suspended(run: FlowRun) -> bool:
    return bool(run.state and run.state.is_paused() and run.state.name == "Suspended")


def post_events(client: SyncPrefectClient, events: Sequence[Event]) -> None:
    """POST /events: synchronous, so a short-lived caller (a Lambda) knows it was delivered."""
    if not events:
        return
    response = client.request("POST", "/events", json=[e.model_dump(mode="json") for e in events])
    response.raise_for_status()


@dataclass(frozen=True)
class Emitted:
    """What one call of ``emit_for_work`` did: the runs told, and those that never suspended."""

    resumed_runs: list[str]
    not_suspended: list[str]


def emit_for_work(
    work: Work,
    status: str,
    *,
    client: SyncPrefectClient | None = None,
    settle_seconds: float = SETTLE_SECONDS,
    event_id: uuid.UUID | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Emitted:
    """Post one event per suspended run waiting on ``work``; wait up to ``settle_seconds``
    for a tagged run that is still on its way to Suspended."""
    if client is None:
        with get_client(sync_client=True) as own:
            return emit_for_work(
                work, status, client=own, settle_seconds=settle_seconds, event_id=event_id
            )
    told: set[str] = set()
    deadline = time.monotonic() + settle_seconds
    while True:
        runs = read_tagged_runs(client, work)
        ready = [r for r in runs if is_suspended(r) and str(r.id) not in told]
        events = [
            work_event(work, status, r, event_id=_per_run(event_id, r) if event_id else None)
            for r in ready
        ]
        post_events(client, events)
        told.update(str(r.id) for r in ready)
        pending = [str(r.id) for r in runs if not is_suspended(r) and str(r.id) not in told]
        if not pending or time.monotonic() >= deadline:
            return Emitted(sorted(told), sorted(pending))
        sleep(_SETTLE_POLL_SECONDS)


def _per_run(event_id: uuid.UUID, run: FlowRun) -> uuid.UUID:
    """A stable id per (delivered event, run): one EventBridge event may tell several runs."""
    return uuid.uuid5(event_id, str(run.id))


def emit_for_statement(
    statement_id: str, status: str, *, client: SyncPrefectClient | None = None
) -> Emitted:
    """The local endpoint's and the EventBridge target's entry point for a statement."""
    return emit_for_work(Work("statement", statement_id), status, client=client)


def emit_for_glue_run(
    job_name: str, run_id: str, state: str, *, client: SyncPrefectClient | None = None
) -> Emitted:
    """The local Glue endpoint's entry point when a run ended (on AWS, EventBridge's "Glue
    Job State Change" reaches ``eventbridge_handler`` instead)."""
    return emit_for_work(Work("glue", run_id, job_name), state, client=client)


def work_from_eventbridge(event: Mapping[str, Any]) -> tuple[Work, str] | None:
    """(work, status) of a "Redshift Data Statement Status Change" or "Glue Job State
    Change" event; None for a status that is not an end (nothing to resume for)."""
    detail = event.get("detail")
    kind = event.get("detail-type")
    if not isinstance(detail, Mapping):
        raise EventBridgeInputError(f"event has no detail object: {dict(event)!r:.200}")
    if kind == "Redshift Data Statement Status Change":
        statement_id, status = detail.get("statementId"), detail.get("state")
        if not isinstance(statement_id, str) or not isinstance(status, str):
            raise EventBridgeInputError("statement event without detail.statementId/state")
        return (
            (Work("statement", statement_id), status) if status in STATEMENT_END_STATUSES else None
        )
    if kind == "Glue Job State Change":
        job, run_id, state = detail.get("jobName"), detail.get("jobRunId"), detail.get("state")
        if not all(isinstance(v, str) for v in (job, run_id, state)):
            raise EventBridgeInputError("Glue event without detail.jobName/jobRunId/state")
        assert isinstance(job, str) and isinstance(run_id, str) and isinstance(state, str)
        return (Work("glue", run_id, job), state) if state in GLUE_END_STATES else None
    raise EventBridgeInputError(
        f"detail-type {kind!r} is not handled; allowed: Redshift Data Statement Status "
        "Change, Glue Job State Change"
    )


def eventbridge_handler(event: Mapping[str, Any], context: object = None) -> dict[str, Any]:
    """The EventBridge rule's target (an AWS Lambda handler: ``flows.resume_events.
    eventbridge_handler``), with PREFECT_API_URL (and PREFECT_API_KEY) in its environment.

    The Prefect event id derives from EventBridge's event id, so a redelivery is deduplicated.
    """
    found = work_from_eventbridge(event)
    if found is None:
        return {"resumed_runs": [], "skipped": "not an end state"}
    work, status = found
    raw_id = event.get("id")
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"eventbridge:{raw_id}") if raw_id else None
    emitted = emit_for_work(work, status, event_id=event_id)
    return {"resumed_runs": emitted.resumed_runs, "not_suspended": emitted.not_suspended}


def automation_spec() -> AutomationCore:
    """Resume the waiting flow run named by each "work ended" event (one firing per event)."""
    return AutomationCore(
        name=AUTOMATION_NAME,
        description=(
            "Resume a suspended mystore run when a statement or Glue run it waits on ended "
            "(events from flows.resume_events). Installed by python -m flows.resume_waiting "
            "--install-automation."
        ),
        enabled=True,
        trigger=EventTrigger(
            expect={STATEMENT_ENDED, GLUE_RUN_ENDED},
            match_related={"prefect.resource.role": WAITER_ROLE},
            for_each={f"related:{WAITER_ROLE}:prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=dt.timedelta(0),
        ),
        actions=[ResumeFlowRun()],
    )


def _comparable(automation: AutomationCore) -> dict[str, Any]:
    """What an install sets, as Python values, so that a stored automation equals its spec.

    Python mode, not JSON: the trigger's ``expect`` and ``for_each`` are sets, and JSON mode
    writes a set as a list in iteration order, which for the same two event names depends on
    the order they were inserted and on the process's hash seed (the automation read back
    from the server then compared unequal to an identical spec under some seeds).
    """
    fields = ("name", "description", "enabled", "trigger", "actions")
    return AutomationCore.model_validate(automation.model_dump()).model_dump(
        mode="python", include=set(fields)
    )


def install_automation(client: SyncPrefectClient | None = None) -> tuple[str, str]:
    """Create the automation, or update the one of that name if it differs; never a second.

    Returns (what happened: created / updated / unchanged, its id). Extra automations of the
    same name (from a race of two installs) are deleted.
    """
    if client is None:
        with get_client(sync_client=True) as own:
            return install_automation(own)
    spec = automation_spec()
    existing = sorted(client.read_automations_by_name(AUTOMATION_NAME), key=lambda a: str(a.id))
    if not existing:
        return "created", str(client.create_automation(spec))
    keep, *extra = existing
    for duplicate in extra:
        client.delete_automation(duplicate.id)
    if _comparable(keep) == _comparable(spec):
        return "unchanged", str(keep.id)
    _replace_automation(client, keep.id, spec)
    return "updated", str(keep.id)


def _replace_automation(
    client: SyncPrefectClient, automation_id: uuid.UUID, spec: AutomationCore
) -> None:
    """PUT the whole spec over the stored automation.

    Not ``client.update_automation``: it sends ``model_dump(exclude_unset=True)``, which drops
    each action's ``type`` (a default, so never "set"); the server then reads ``[{}]`` as a
    do-nothing action, and the updated automation resumes nothing (Prefect 3.9). The
    server's update schema forbids ``owner_resource``, a client-only field.
    """
    body = spec.model_dump(mode="json", exclude={"owner_resource"})
    response = client.request(
        "PUT", "/automations/{id}", path_params={"id": automation_id}, json=body
    )
    response.raise_for_status()
