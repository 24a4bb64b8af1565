"""The output-shape check catches each way a response can drift from botocore's model, and a
strict service turns such a response into an error instead of sending it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from local.core import Call, ModeledService, ServiceError, output_problems, service_model

MODEL = service_model("redshift-data")
DESCRIBED: dict[str, Any] = {"Id": "d9b6c0c9-0747-4bf4-b142-e8883122f766", "Status": "FINISHED"}


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"Status": "FINISHED"}, "DescribeStatement.Id is required by DescribeStatementResponse but missing"),
        ({**DESCRIBED, "Extra": 1}, "DescribeStatement.Extra is not a member of DescribeStatementResponse"),
        ({**DESCRIBED, "Status": "DONE"}, "DescribeStatement.Status 'DONE' is not one of SUBMITTED,"),
        ({**DESCRIBED, "ResultRows": "7"}, "DescribeStatement.ResultRows must be an integer (Long), got '7'"),
        ({**DESCRIBED, "HasResultSet": 1}, "DescribeStatement.HasResultSet must be a boolean (Boolean), got 1"),
        ({**DESCRIBED, "Error": None}, "DescribeStatement.Error is null"),
        ({**DESCRIBED, "SubStatements": [{"Status": "FINISHED"}]}, "DescribeStatement.SubStatements[0].Id is required"),
    ],
)  # fmt: skip
def test_each_drift_is_named(payload: dict[str, Any], problem: str) -> None:
    problems = output_problems(MODEL, "DescribeStatement", payload)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_a_union_sets_exactly_one_member() -> None:
    record = {"Records": [[{"isNull": True, "longValue": 1}]], "ColumnMetadata": []}
    assert output_problems(MODEL, "GetStatementResult", record) == [
        "GetStatementResult.Records[0][0] is a Field union and must set exactly one member, "
        "got ['isNull', 'longValue']"
    ]
    assert output_problems(MODEL, "GetStatementResult", {"Records": [[{"isNull": True}]]}) == []


class _Drifting(ModeledService):
    """A service whose CancelStatement answers a string where the model has a boolean."""

    service_name = "redshift-data"

    def cancel_statement(self, call: Call) -> Mapping[str, Any]:
        return {"Status": "cancelled"}


def test_a_strict_service_refuses_to_send_a_drifted_response() -> None:
    service = _Drifting()
    call = Call("CancelStatement", {"Id": DESCRIBED["Id"]}, "me")
    assert service.handle(call) == {"Status": "cancelled"}  # not strict: sent as it is
    service.strict_responses = True
    with pytest.raises(ServiceError) as exc:
        service.handle(call)
    assert (exc.value.code, exc.value.status) == ("InternalServerException", 500)
    assert (
        "CancelStatement.Status must be a boolean (Boolean), got 'cancelled'" in exc.value.message
    )


def test_routing_follows_the_model() -> None:
    service = _Drifting()
    assert service.target_prefix == "RedshiftData"
    assert service.implemented_operations() == ["CancelStatement"]
    with pytest.raises(ServiceError) as exc:
        service.handle(Call("DescribeStatement", {"Id": DESCRIBED["Id"]}, "me"))
    assert exc.value.code == "ValidationException"
    assert "not supported by the local endpoint; supported: CancelStatement" in exc.value.message
    with pytest.raises(ServiceError) as exc:
        service.handle(Call("Nope", {}, "me"))
    assert exc.value.code == "UnknownOperationException"
