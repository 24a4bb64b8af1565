"""The event path's parts: the event a waiting run gets, the automation that answers it and
its install on a real Prefect server, and reading EventBridge's events (the whole round trip,
a suspended run resumed by its statement's end, is in tests/integration/test_resume_events.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect.states import Suspended

from flows.resume_events import (
    AUTOMATION_NAME,
    GLUE_RUN_ENDED,
    STATEMENT_ENDED,
    WAITER_ROLE,
    EventBridgeInputError,
    automation_spec,
    eventbridge_handler,
    install_automation,
    work_event,
    work_from_eventbridge,
)
from flows.waiting import Work
from tests.conftest import PrefectApi

SID = "dd2e1ec9-2ee3-49a0-819f-905fa7d75a4a"
RUN = FlowRun(id=uuid.uuid4(), name="brave-otter", flow_id=uuid.uuid4(), state=Suspended())
# The documented example of the Data API's event (docs.aws.amazon.com, Redshift Data API
# monitoring events), with our statement name.
STATEMENT_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "18e7079c-dd4b-dd64-caf9-e2a31640dab0",
    "detail-type": "Redshift Data Statement Status Change",
    "source": "aws.redshift-data",
    "account": "123456789012",
    "time": "2020-10-01T21:14:26Z",
    "region": "us-east-1",
    "resources": ["arn:aws:redshift:us-east-1:123456789012:cluster:redshift-cluster-1"],
    "detail": {
        "principal": "arn:aws:iam::123456789012:user/myuser",
        "statementName": "mystore-nightly/2026-11-25/load/attempt-1",
        "statementId": SID,
        "redshiftQueryId": -1,
        "state": "FINISHED",
        "rows": 1,
        "expireAt": 1601673265,
    },
}


def test_the_event_names_the_statement_and_its_waiting_run() -> None:
    event = work_event(Work("statement", SID), "FAILED", RUN)
    assert event.event == STATEMENT_ENDED
    assert event.resource.id == f"redshift-data.statement.{SID}"
    assert event.resource["mystore.status"] == "FAILED"
    (related,) = event.related
    assert related.id == f"prefect.flow-run.{RUN.id}"
    assert related.role == WAITER_ROLE
    assert event.payload == {"status": "FAILED", "work": f"statement {SID}"}


def test_the_waiting_run_is_the_only_flow_run_of_the_event() -> None:
    """ResumeFlowRun resumes the first ``prefect.flow-run.<id>`` among the event's resource
    and related resources (prefect/server/events/actions.py, FlowRunAction.flow_run)."""
    event = work_event(Work("glue", "jr_1", "raw2clean"), "SUCCEEDED", RUN)
    assert event.event == GLUE_RUN_ENDED
    flow_runs = [r.id for r in event.involved_resources if r.id.startswith("prefect.flow-run.")]
    assert flow_runs == [f"prefect.flow-run.{RUN.id}"]


def test_a_given_event_id_is_kept_so_redeliveries_are_deduplicated() -> None:
    event_id = uuid.uuid4()
    when = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)
    first = work_event(Work("statement", SID), "FINISHED", RUN, event_id=event_id, occurred=when)
    again = work_event(Work("statement", SID), "FINISHED", RUN, event_id=event_id, occurred=when)
    assert first.model_dump(mode="json") == again.model_dump(mode="json")


def test_the_automation_resumes_the_related_run_once_per_event() -> None:
    spec = automation_spec()
    assert spec.name == AUTOMATION_NAME
    trigger = spec.trigger
    assert trigger.expect == {STATEMENT_ENDED, GLUE_RUN_ENDED}  # type: ignore[union-attr]
    assert trigger.for_each == {f"related:{WAITER_ROLE}:prefect.resource.id"}  # type: ignore[union-attr]
    assert trigger.posture == "Reactive"  # type: ignore[union-attr]
    assert (trigger.threshold, trigger.within) == (1, dt.timedelta(0))  # type: ignore[union-attr]
    assert [a.type for a in spec.actions] == ["resume-flow-run"]


def _store(client: SyncPrefectClient, automation_id: str, body: dict[str, Any]) -> None:
    """PUT the automation as given: the client's own update writes sets in its own order (and
    drops each action's type, see ``flows.resume_events._replace_automation``)."""
    client.request(
        "PUT", "/automations/{id}", path_params={"id": automation_id}, json=body
    ).raise_for_status()


@pytest.mark.parametrize("stored_order", ["as sent", "reversed"])
def test_a_second_identical_install_changes_nothing(
    prefect_api: PrefectApi, stored_order: str
) -> None:
    """An identical install is "unchanged" whatever order the server keeps the event names in
    (``expect`` is a set: compared as a list, it differed under some hash seeds). Another test
    may have installed first, so the first call here may create, update or keep it."""
    with SyncPrefectClient(api=prefect_api.api_url) as client:
        _, automation_id = install_automation(client)
        body = automation_spec().model_dump(mode="json", exclude={"owner_resource"})
        if stored_order == "reversed":
            body["trigger"]["expect"].reverse()
        _store(client, automation_id, body)
        assert install_automation(client) == ("unchanged", automation_id)
        assert install_automation(client) == ("unchanged", automation_id)
        assert [str(a.id) for a in client.read_automations_by_name(AUTOMATION_NAME)] == [
            automation_id
        ]


@pytest.mark.parametrize(
    "change",
    [
        {"description": "an older description"},
        {"enabled": False},
        {"trigger": {"expect": [STATEMENT_ENDED]}},
        {"trigger": {"within": 60.0}},
    ],
)
def test_an_install_over_a_different_automation_updates_it(
    prefect_api: PrefectApi, change: dict[str, Any]
) -> None:
    with SyncPrefectClient(api=prefect_api.api_url) as client:
        _, automation_id = install_automation(client)
        body = automation_spec().model_dump(mode="json", exclude={"owner_resource"})
        for key, value in change.items():
            if isinstance(value, dict):
                body[key].update(value)
            else:
                body[key] = value
        _store(client, automation_id, body)
        assert install_automation(client) == ("updated", automation_id)
        assert install_automation(client) == ("unchanged", automation_id)
        (stored,) = client.read_automations_by_name(AUTOMATION_NAME)
        assert [a.type for a in stored.actions] == ["resume-flow-run"]


def test_eventbridge_statement_event_is_read() -> None:
    assert work_from_eventbridge(STATEMENT_EVENT) == (Work("statement", SID), "FINISHED")


def test_eventbridge_glue_event_is_read() -> None:
    event = {
        "detail-type": "Glue Job State Change",
        "detail": {"jobName": "raw2clean", "jobRunId": "jr_9", "state": "FAILED"},
    }
    assert work_from_eventbridge(event) == (Work("glue", "jr_9", "raw2clean"), "FAILED")


def test_a_state_that_is_not_an_end_resumes_nothing() -> None:
    event = {**STATEMENT_EVENT, "detail": {**STATEMENT_EVENT["detail"], "state": "STARTED"}}
    assert work_from_eventbridge(event) is None
    assert eventbridge_handler(event) == {"resumed_runs": [], "skipped": "not an end state"}


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"detail-type": "EC2 Instance State-change Notification", "detail": {}}, "not handled"),
        ({"detail-type": "Redshift Data Statement Status Change"}, "no detail object"),
        (
            {"detail-type": "Redshift Data Statement Status Change", "detail": {"state": "X"}},
            "detail.statementId",
        ),
        ({"detail-type": "Glue Job State Change", "detail": {"jobName": "j"}}, "jobRunId"),
    ],
)
def test_unreadable_eventbridge_events_are_refused_by_name(
    event: dict[str, Any], message: str
) -> None:
    with pytest.raises(EventBridgeInputError, match=message):
        work_from_eventbridge(event)
