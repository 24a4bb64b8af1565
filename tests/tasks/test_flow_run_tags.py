"""Work tags on the flow run, on a real Prefect server: each is on the run when
``record_work`` returns (what fences the stop hooks), and a work tag this process has
already seen on the run costs no second read and write."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import SyncPrefectClient, get_client

from tasks.flow_run_tags import glue_run_tag, read_flow_run_tags, record_work, statement_tag
from tests.conftest import PrefectApi

Calls = list[str]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """The flow-run reads and writes any sync client makes (spied, still sent)."""
    made: Calls = []

    def spy(name: str) -> Callable[..., Any]:
        real = getattr(SyncPrefectClient, name)

        def counted(self: SyncPrefectClient, *args: Any, **kwargs: Any) -> Any:
            made.append(name)
            return real(self, *args, **kwargs)

        return counted

    for name in ("read_flow_run", "update_flow_run"):
        monkeypatch.setattr(SyncPrefectClient, name, spy(name))
    return made


def _server_tags(flow_run_id: Any) -> list[str]:
    with get_client(sync_client=True) as client:
        return list(client.read_flow_run(flow_run_id).tags)


def test_each_new_work_tag_is_on_the_run_when_recorded_and_a_seen_one_costs_nothing(
    prefect_settings: PrefectApi, calls: Calls
) -> None:
    first, second = statement_tag(str(uuid.uuid4())), glue_run_tag("raw2clean", "jr_1")
    seen: dict[str, Any] = {}

    @flow(name="flow-run-tags-test")
    def night() -> None:
        from prefect.runtime import flow_run

        seen["id"] = flow_run.id
        calls.clear()
        record_work(first)
        seen["after_first"] = (list(calls), _server_tags(flow_run.id))
        calls.clear()
        record_work(first)
        seen["again"] = list(calls)
        calls.clear()
        record_work(second)
        seen["after_second"] = (list(calls), _server_tags(flow_run.id))

    night()
    after_first_calls, after_first_tags = seen["after_first"]
    assert after_first_calls == ["read_flow_run", "update_flow_run"]
    assert first in after_first_tags
    assert seen["again"] == []
    after_second_calls, after_second_tags = seen["after_second"]
    assert after_second_calls == ["read_flow_run", "update_flow_run"]
    assert after_second_tags.count(first) == 1 and second in after_second_tags
    assert sorted(_server_tags(seen["id"])) == sorted([first, second])


def test_a_resumed_run_records_nothing_again_for_the_work_its_tags_name(
    prefect_settings: PrefectApi, calls: Calls
) -> None:
    """A resumed execution reads its tags once; its steps reattach to that work and record
    it without a call, while work it has not tagged yet is still written."""
    earlier, new = statement_tag(str(uuid.uuid4())), statement_tag(str(uuid.uuid4()))
    seen: dict[str, Any] = {}

    @flow(name="flow-run-tags-resumed-test")
    def night() -> None:
        from prefect.runtime import flow_run

        with get_client(sync_client=True) as client:  # what an earlier execution wrote
            client.update_flow_run(flow_run.id, tags=[earlier])
        seen["id"] = flow_run.id
        assert read_flow_run_tags(flow_run.id) == [earlier]
        calls.clear()
        record_work(earlier)
        seen["earlier"] = list(calls)
        calls.clear()
        record_work(new)
        seen["new"] = list(calls)

    night()
    assert seen["earlier"] == []
    assert seen["new"] == ["read_flow_run", "update_flow_run"]
    assert sorted(_server_tags(seen["id"])) == sorted([earlier, new])
