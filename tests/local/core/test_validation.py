"""Request validation from botocore's models: what ParamValidator checks, and what the
server-side checks add (maximums, enums, patterns, booleans are not numbers)."""

from __future__ import annotations

from typing import Any

import pytest

from local.core import RequestValidator, ServiceError, service_model

DATA_API = RequestValidator(service_model("redshift-data"))
GLUE = RequestValidator(service_model("glue"))
SUBMIT: dict[str, Any] = {"Sql": "select 1", "ClusterIdentifier": "c", "Database": "dev"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Sql is required."),
        ({**SUBMIT, "Sqls": ["x"]}, "Sqls is not a parameter of ExecuteStatement; allowed: Sql,"),
        ({**SUBMIT, "WaitTimeSeconds": 31}, "WaitTimeSeconds must be from 1 to 30, got 31."),
        ({**SUBMIT, "WaitTimeSeconds": False}, "WaitTimeSeconds must be an integer, got False."),
        ({**SUBMIT, "ClusterIdentifier": "c" * 64}, "ClusterIdentifier must be at most 63"),
        ({**SUBMIT, "ResultFormat": "XML"}, "ResultFormat 'XML' is not one of JSON, CSV."),
        ({**SUBMIT, "Parameters": [{"name": "a", "value": "1", "x": 1}]}, "Parameters[0].x is not a member of Parameters[0]"),
        ({**SUBMIT, "WithEvent": "yes"}, "WithEvent must be a boolean, got 'yes'."),
    ],
)  # fmt: skip
def test_each_problem_names_the_member_the_value_and_what_is_allowed(
    body: dict[str, Any], message: str
) -> None:
    with pytest.raises(ServiceError) as exc:
        DATA_API.check("ExecuteStatement", body)
    assert exc.value.code == "ValidationException"
    assert exc.value.message.startswith(message)


def test_a_valid_request_has_no_problems() -> None:
    assert DATA_API.problems("ExecuteStatement", {**SUBMIT, "WaitTimeSeconds": 30}) == []
    assert DATA_API.problems("ListStatements", {}) == []


def test_every_problem_is_found_not_only_the_first() -> None:
    problems = DATA_API.problems("ListStatements", {"MaxResults": 101, "Status": "DONE"})
    assert problems == [
        "MaxResults must be from 0 to 100, got 101.",
        "Status 'DONE' is not one of SUBMITTED, PICKED, STARTED, FINISHED, ABORTED, FAILED, ALL.",
    ]


def test_glue_answers_its_modeled_input_error() -> None:
    with pytest.raises(ServiceError) as exc:
        GLUE.check("GetJobRun", {"JobName": "j"})
    assert (exc.value.code, exc.value.message) == ("InvalidInputException", "RunId is required.")


def test_java_surrogate_pair_patterns_accept_astral_characters() -> None:
    """Glue's name pattern spells U+10000..U+10FFFF as UTF-16 surrogate pairs."""
    assert GLUE.problems("GetJob", {"JobName": "night \U0001f319 job"}) == []
    assert GLUE.problems("GetJob", {"JobName": "bell \x07"}) == [
        "JobName 'bell \\x07' must match [\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\t]*."
    ]


def test_service_errors_survive_pickling() -> None:
    import pickle

    error = ServiceError("ValidationException", "bad", 400, {"ResourceId": "x"})
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.message, copy.status, copy.fields) == (
        "ValidationException",
        "bad",
        400,
        {"ResourceId": "x"},
    )
