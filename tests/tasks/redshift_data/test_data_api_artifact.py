"""The statements artifact: one per flow run, keyed after the flow, rows merged by id."""

from __future__ import annotations

from tasks.redshift_data.artifact import artifact_key, merge_row


def test_the_key_is_the_flows_name_in_prefects_key_alphabet() -> None:
    assert artifact_key("mystore-nightly") == "redshift-statements-mystore-nightly"
    assert artifact_key("My_Flow.v2") == "redshift-statements-my-flow-v2"
    assert artifact_key("") == "redshift-statements"


def test_a_statement_seen_again_is_updated_in_place_not_appended() -> None:
    rows = merge_row([], {"id": "a", "status": "STARTED"})
    rows = merge_row(rows, {"id": "b", "status": "FINISHED"})
    rows = merge_row(rows, {"id": "a", "status": "FINISHED"})
    assert rows == [{"id": "a", "status": "FINISHED"}, {"id": "b", "status": "FINISHED"}]
